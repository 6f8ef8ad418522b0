"""What the USSD gateway needs from the layers below it, as small protocols.

The CRM lookup and the named actions are the ones the voice driver uses
(:class:`ivr.crm.lookup.CrmLookup`, :class:`ivr.crm.actions.CrmActions`); the journey
store gives both the journey and the shared kv table the sessions live in.
"""

from __future__ import annotations

from typing import Protocol

from ivr.crm.lookup import LookupResult
from ivr.crm.ports import ActionService
from ivr.journey.ports import JourneyStore

__all__ = ["ActionService", "CallerLookup", "JourneyStore"]


class CallerLookup(Protocol):
    async def lookup(self, raw_caller_id: str | None) -> LookupResult:
        """Never raises: a slow or broken CRM is ``status="unavailable"``."""
        ...
