"""What the voice driver needs from the layers above it, as small protocols."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ivr.journey.tokens import ContextClaim
from ivr.routing.rules import RouteDecision


class ContextTokens(Protocol):
    async def issue(self, claim: ContextClaim) -> str: ...


class Router(Protocol):
    async def decide(self, *, queue: str, priority: int, reason: str, customer: Mapping[str, Any],
                     caller_number: str | None, dnis: str | None, journey_key: str,
                     crm_status: str) -> RouteDecision: ...
