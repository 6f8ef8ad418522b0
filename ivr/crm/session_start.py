"""The one caller-session start: who is this, what do the menus know of them, whose journey is it.

Every channel begins the same way: a call's caller ID, a USSD request's MSISDN, an SMS
sender. The number is cleaned (no control characters, bounded length), normalised to
E.164, looked up within the CRM budget, and turned into the caller context the engine's
templates read, the journey key the events go under (the customer's id, else the
number), and the journey events that say how it went (``caller_identified`` or
``crm_unavailable``, with the CRM's latency). FastAGI, USSD and SMS call
:meth:`CallerSessions.start`; the ARI driver will too, and ``ivr simulate --from`` does,
so an admin sees what a real caller would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ivr.crm.lookup import LookupResult
from ivr.crm.ports import CallerLookup
from ivr.flow.context import CallerContext
from ivr.journey.events import CALLER_IDENTIFIED, CRM_UNAVAILABLE

#: What the flow may see of a caller-supplied field (caller ID number or name).
MAX_CALLER_FIELD = 64
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
#: The lookup was not asked (no CRM configured): the generic menu, like "unknown".
NOT_ASKED = "off"

JourneyNote = tuple[str, dict[str, Any]]
Clock = Callable[[], dt.datetime]
#: () -> (the default queue's facts, every queue's facts by name); see ivr.callbacks.wait.
#: (node) -> the default queue's facts and every queue's, on the Asterisk named ``node`` ("": any)
QueueFactsSource = Callable[[str], tuple[Mapping[str, Any], Mapping[str, Mapping[str, Any]]]]
log = logging.getLogger(__name__)


def clean_caller_field(value: str | None) -> str:
    """A caller-supplied field as the flow may see it: no control characters, bounded length."""
    return _UNSAFE.sub(" ", value or "").strip()[:MAX_CALLER_FIELD]


def now_fields(moment: dt.datetime) -> dict[str, Any]:
    """``now.*`` for templates: the local hour, minute, weekday (0 = Monday) and date."""
    return {"hour": moment.hour, "minute": moment.minute, "weekday": moment.weekday(),
            "date": moment.date().isoformat()}


def local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


@dataclass(frozen=True)
class CallerStart:
    """The caller as a session begins with them.

    ``status`` is the lookup's (found, unknown, no-caller-id, unavailable) or ``"off"``
    when no CRM is configured; ``number`` is E.164 or None; ``events`` are the journey
    events of the start, for the session to stamp with its channel and interaction.
    """

    context: CallerContext
    journey_key: str
    number: str | None
    status: str
    events: tuple[JourneyNote, ...] = ()
    customer: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def found(self) -> bool:
        return self.status == "found"

    @property
    def language(self) -> str | None:
        """The customer's language, when the CRM holds one."""
        language = self.customer.get("language")
        return language if isinstance(language, str) and language else None


class CallerSessions:
    """Starts caller sessions for every channel; without a lookup every caller is unknown."""

    def __init__(self, lookup: CallerLookup | None, *, clock: Clock = local_now,
                 queue_facts: QueueFactsSource | None = None) -> None:
        self.lookup = lookup
        self.clock = clock
        #: The queues' place and wait for templates (``queue``, ``queues``); the composition root
        #: sets it where Asterisk's queues are known (:class:`ivr.callbacks.wait.QueueFacts`).
        self.queue_facts = queue_facts

    async def start(self, raw_number: str | None, *, dnis: str | None = None, caller_name: str | None = None,
                    fallback_key: str | None = None, moment: dt.datetime | None = None,
                    node: str = "") -> CallerStart:
        """Identify ``raw_number`` and build the session's start. Never raises for a CRM failure.

        ``fallback_key`` is the journey key when the number is unusable (a withheld caller
        ID: ``call:<uniqueid>``); ``moment`` overrides the clock (a USSD request's time);
        ``node`` names the Asterisk a call is on, whose queues its place and wait come from.
        """
        shown = clean_caller_field(raw_number)
        caller: dict[str, Any] = {"number": shown}
        if caller_name and (name := clean_caller_field(caller_name)):
            caller["name"] = name
        now = now_fields(moment or self.clock())
        key_default = shown or fallback_key or ""
        if self.lookup is None:
            start = CallerStart(CallerContext(caller=caller, dnis=dnis, now=now), key_default, None, NOT_ASKED)
        else:
            result = await self.lookup.lookup(shown or None)
            start = started(result, caller, dnis=dnis, now=now, fallback_key=key_default)
        return self._with_queues(start, node)

    def _with_queues(self, start: CallerStart, node: str) -> CallerStart:
        if self.queue_facts is None:
            return start
        try:
            queue, queues = self.queue_facts(node)
        except Exception:  # noqa: BLE001 - the menu works without the wait
            log.exception("queue facts unavailable; the session starts without them")
            return start
        return dataclasses.replace(start, context=dataclasses.replace(start.context, queue=queue, queues=queues))


def started(result: LookupResult, caller: Mapping[str, Any], *, dnis: str | None, now: Mapping[str, Any],
            fallback_key: str) -> CallerStart:
    """The start a lookup result gives: pure, so every channel shares the exact same rules."""
    ms = round(result.latency_ms, 1)
    if result.customer is not None:
        fields = dict(result.customer_fields())
        note: JourneyNote = (CALLER_IDENTIFIED, {"by": "caller_id", "customer": result.customer.id, "crm_ms": ms})
        return CallerStart(CallerContext(customer=fields, caller=caller, dnis=dnis, now=now),
                           str(result.customer.id), result.number, result.status, (note,), MappingProxyType(fields))
    events: tuple[JourneyNote, ...] = ()
    if result.status == "unavailable":
        events = ((CRM_UNAVAILABLE, {"error": result.error or "", "crm_ms": ms}),)
    return CallerStart(CallerContext(caller=caller, dnis=dnis, now=now), result.number or fallback_key,
                       result.number, result.status, events)
