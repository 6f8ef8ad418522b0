"""What the channels need from the customer side: the caller lookup and named CRM actions.

:class:`CallerLookup` is the one lookup port every channel's session start uses
(:class:`ivr.crm.session_start.CallerSessions`); :class:`ivr.crm.lookup.CrmLookup` implements it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ivr.crm.lookup import LookupResult
from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult


class ActionService(Protocol):
    async def run(self, name: str, args: Mapping[str, Any], context: CallerContext,
                  *, interaction: str) -> ActionResult:
        """Run a named action (balance, service_on, ...); failures come back as ``ok=False``."""
        ...


class CallerLookup(Protocol):
    async def lookup(self, raw_caller_id: str | None) -> LookupResult:
        """Never raises: a slow or broken CRM is ``status="unavailable"``."""
        ...
