"""What the drivers need from the customer side: named actions run against the CRM."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult


class ActionService(Protocol):
    async def run(self, name: str, args: Mapping[str, Any], context: CallerContext,
                  *, interaction: str) -> ActionResult:
        """Run a named action (balance, service_on, ...); failures come back as ``ok=False``."""
        ...
