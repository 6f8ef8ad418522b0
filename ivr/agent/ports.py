"""What the agent desktop needs from the layers below it, as small protocols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["CallControl", "CallControlError", "CustomerNames", "JourneyReader", "JourneyWriter",
           "TokenResolver", "TokenRevoker"]

from ivr.errors import CallControlError
from ivr.journey.ports import StampedEvent
from ivr.journey.tokens import ContextClaim


class TokenResolver(Protocol):
    async def resolve(self, token: str) -> ContextClaim:
        """The claim behind ``token``; :class:`~ivr.journey.errors.TokenError` if it does not resolve."""
        ...


@runtime_checkable
class TokenRevoker(Protocol):
    async def revoke(self, token: str) -> ContextClaim:
        """End ``token`` at once; the claim it held. :class:`~ivr.journey.errors.TokenError` if it does not resolve."""
        ...


class JourneyReader(Protocol):
    async def recent(self, key: str, *, limit: int = ..., since: float | None = ...) -> Sequence[StampedEvent]: ...


class CustomerNames(Protocol):
    async def name_of(self, customer_key: str) -> str | None:
        """The customer's name as the CRM holds it now, or None (unknown key, CRM down)."""
        ...


class JourneyWriter(Protocol):
    async def append(self, key: str, events: Sequence[StampedEvent]) -> None: ...


class CallControl(Protocol):
    """What an agent may do to the call they are on; the voice layer implements it over AMI.

    ``interaction`` is the customer's call (the token's), ``agent`` the agent asking.
    Each raises :class:`CallControlError` with a sentence the desktop can show."""

    async def transfer(self, interaction: str, agent: str, to: str, reason: str, kind: str = "queue") -> None:
        """Blind: the caller leaves this agent for ``to``, a ``kind`` of queue, agent or number."""
        ...

    async def consult(self, interaction: str, agent: str, to: str) -> str:
        """The caller on hold, the agent with the expert at ``to``; returns the conference name."""
        ...

    async def conference(self, interaction: str, agent: str) -> None:
        """Agent, expert and caller together (after :meth:`consult`)."""
        ...
