"""What the aggregator's end-of-session notification adds to the journey.

Africa's Talking-style aggregators post a notification when a session ends, however it
ended: ``Success`` (the application sent END), ``Incomplete`` (the subscriber cancelled,
or the network timed the session out) or ``Failed`` (a network error). Without it, a
subscriber who walks away mid-menu leaves no trace but the last screen: the agent cannot
tell "broke off at Tariffs" from "still typing", and the KPIs never count the session
as ended.

So the journey gets ``ussd_ended`` (status, hops, duration, the aggregator's error), and,
when our own record shows the session was still waiting for the subscriber (a menu or
the resume offer on screen, no END screen reached), a ``hangup`` by the caller: the same
event a voice caller hanging up mid-menu leaves, which the KPIs count as abandoned. The
record itself is left as it is, so dialling again within the resume window still offers
to continue. Pure: the gateway loads the record and stores what comes out.
"""

from __future__ import annotations

from typing import Any

from ivr.journey.events import HANGUP, USSD_ENDED
from ivr.ussd.conversation import Event
from ivr.ussd.protocol import UssdSessionEnd
from ivr.ussd.sessions import OFFER, RUN, SessionRecord

END_NAMESPACE = "ussd_end"  # kv: session ids whose notification is stored (repeats are ignored)


def broke_off(record: SessionRecord | None) -> bool:
    """Whether the session ended while a screen still waited for the subscriber's answer."""
    return record is not None and record.state in (RUN, OFFER) and not record.finished


def end_events(record: SessionRecord | None, end: UssdSessionEnd) -> list[Event]:
    """The journey events for ``end``; ``record`` is the session's, if the store still has it."""
    data: dict[str, Any] = {"status": end.status, "code": end.service_code}
    if record is not None and record.node:
        data["node"] = record.node
    if end.hops is not None:
        data["screens"] = end.hops
    if end.duration_ms is not None:
        data["duration_s"] = round(end.duration_ms / 1000, 1)
    if end.error:
        data["error"] = end.error
    events: list[Event] = []
    if broke_off(record):
        assert record is not None
        events.append((HANGUP, {"node": record.node, "by": "caller", "reason": f"session ended: {end.status}"}))
    events.append((USSD_ENDED, data))
    return events
