"""Staff read a customer's journey by customer id or number, and every read is audited.

The help desk answering an e-mail and the supervisor reviewing a complaint need the
same journey the agent sees, without a call and so without a token. A journey is
personal data, so a read needs a role that grants ``journey.read``, and every attempt,
allowed or refused, is written to the audit trail first (who, which role, the person's
name if the tool sends one, whose journey, by what, how many events): a read whose audit
entry cannot be written is not served. ``audit.read`` lists that trail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ivr.agent.access_config import AUDIT_READ, JOURNEY_READ, Staff
from ivr.agent.intake import CUSTOMER_ID, CustomerKeys, IntakeRefused
from ivr.agent.ports import CustomerNames
from ivr.agent.service import (
    AUDIT_KEY,
    JOURNEY_LIMIT,
    JourneyEntry,
    customer_name,
    entry,
    iso,
    name_from_crm,
    write_audit,
)
from ivr.crm.numbers import normalise
from ivr.journey.ports import StampedEvent

ALLOWED, REFUSED = "allowed", "refused"
MAX_ASKED_CHARS = 64  # what a refused request asked for, as the audit keeps it


class StaffJourneyStore(Protocol):
    async def recent(self, key: str, *, limit: int = ..., since: float | None = ...) -> Sequence[StampedEvent]: ...

    async def append(self, key: str, events: Sequence[StampedEvent]) -> None: ...


class NotPermitted(Exception):
    """The staff member's role does not grant what they asked (already audited)."""


@dataclass(frozen=True)
class StaffView:
    customer_key: str
    customer_name: str | None
    journey: tuple[JourneyEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"customer_key": self.customer_key, "customer_name": self.customer_name,
                "journey": [e.to_dict() for e in self.journey]}


class StaffJourneys:
    def __init__(self, store: StaffJourneyStore, keys: CustomerKeys, *, names: CustomerNames | None = None,
                 window_s: float = 30 * 86400.0, limit: int = JOURNEY_LIMIT, default_region: str = "RU",
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.default_region = default_region
        self.keys = keys
        self.names = names
        self.window_s = window_s
        self.limit = limit
        self.clock = clock

    async def journey(self, staff: Staff, user: str, *, customer: str | None = None,
                      number: str | None = None) -> StaffView:
        """The journey, newest first; :class:`NotPermitted` without ``journey.read``.

        The audit entry is written before anything is read; its failure (a
        :class:`~ivr.journey.errors.JourneyError`) ends the request unserved.
        """
        by, asked = ("customer", customer or "") if customer else ("number", number or "")
        asked = asked[:MAX_ASKED_CHARS]
        if JOURNEY_READ not in staff.permissions:
            await self._audit(staff, user, asked, by, REFUSED, 0)
            raise NotPermitted
        if customer:
            if not CUSTOMER_ID.fullmatch(customer):
                raise IntakeRefused(422, "invalid", "customer: 1-64 letters, digits and ._:@-", "customer")
            key = customer
        else:
            e164 = normalise(number or "", self.default_region)
            if e164 is None:
                raise IntakeRefused(422, "invalid", "number: not a phone number", "number")
            try:
                key = await self.keys.key_for_number(e164)
            except IntakeRefused:
                await self._audit(staff, user, e164, by, "unavailable", 0)
                raise
        events = await self.store.recent(key, limit=self.limit, since=self.clock() - self.window_s)
        await self._audit(staff, user, key, by, ALLOWED, len(events))
        name = customer_name(events) or await name_from_crm(self.names, key)
        return StaffView(key, name, tuple(entry(e) for e in events))

    async def audit_trail(self, staff: Staff, user: str, *, limit: int = 200) -> list[dict[str, Any]]:
        """The newest audit entries; :class:`NotPermitted` without ``audit.read`` (and that is audited too)."""
        if AUDIT_READ not in staff.permissions:
            await self._audit(staff, user, "", "audit", REFUSED, 0)
            raise NotPermitted
        events = await self.store.recent(AUDIT_KEY, limit=limit)
        return [{"at": iso(e.at), **e.data} for e in events]

    async def _audit(self, staff: Staff, user: str, customer: str, by: str, outcome: str, count: int) -> None:
        await write_audit(self.store, self.clock(), f"staff:{staff.name}", staff=staff.name, role=staff.role,
                          user=user, customer=customer, by=by, outcome=outcome, events=count)

