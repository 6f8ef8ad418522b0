"""What the agent desktop needs from the layers below it, as small protocols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ivr.journey.ports import StampedEvent
from ivr.journey.tokens import ContextClaim


class TokenResolver(Protocol):
    async def resolve(self, token: str) -> ContextClaim:
        """The claim behind ``token``; :class:`~ivr.journey.errors.TokenError` if it does not resolve."""
        ...


class JourneyReader(Protocol):
    async def recent(self, key: str, *, limit: int = ..., since: float | None = ...) -> Sequence[StampedEvent]: ...


class CustomerNames(Protocol):
    async def name_of(self, customer_key: str) -> str | None:
        """The customer's name as the CRM holds it now, or None (unknown key, CRM down)."""
        ...
