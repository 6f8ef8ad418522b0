"""What happens after the controller handed a call to the dialplan, read from AMI.

The journey must show which agent answered (the next call's routing tries that agent
first) and whether the caller gave up waiting (abandoned calls never count as contained).
The controller remembers, for each call it routed, the journey key and the token; AMI
events about those calls become journey events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from ivr.journey.events import AGENT_CONNECTED, QUEUE_ABANDONED
from ivr.journey.ports import JourneySink, StampedEvent

log = logging.getLogger(__name__)
MAX_TRACKED_CALLS = 10_000



@dataclass(frozen=True)
class RoutedCall:
    journey_key: str
    channel: str  # voice
    queue: str


def agent_name(interface: str) -> str:
    """``PJSIP/agent2`` or ``PJSIP/agent2-0000001a`` -> ``agent2``."""
    name = interface.split("/", 1)[-1]
    return name.rsplit("-", 1)[0] if "-" in name and name.rsplit("-", 1)[1].isalnum() and len(
        name.rsplit("-", 1)[1]) == 8 else name


class AgentEventRecorder:
    def __init__(self, journey: JourneySink) -> None:
        self.journey = journey
        self._calls: OrderedDict[str, RoutedCall] = OrderedDict()
        self._pending: set[asyncio.Task[None]] = set()

    def track(self, uniqueid: str, call: RoutedCall) -> None:
        self._calls[uniqueid] = call
        while len(self._calls) > MAX_TRACKED_CALLS:
            self._calls.popitem(last=False)

    def on_event(self, event: Mapping[str, str]) -> None:
        name = event.get("Event", "")
        call = self._calls.get(event.get("Uniqueid", ""))
        if call is None:
            return
        uid = event["Uniqueid"]
        if name == "AgentConnect":
            data = {"agent": agent_name(event.get("Interface") or event.get("DestChannel", "")),
                    "queue": event.get("Queue", call.queue), "hold_s": _int(event.get("HoldTime"))}
            self._append(call, uid, AGENT_CONNECTED, data)
        elif name == "DialEnd" and event.get("DialStatus") == "ANSWER" and event.get("DestChannel"):
            self._append(call, uid, AGENT_CONNECTED, {"agent": agent_name(event["DestChannel"]), "queue": ""})
        elif name == "QueueCallerAbandon":
            self._append(call, uid, QUEUE_ABANDONED, {"queue": event.get("Queue", call.queue),
                                                      "hold_s": _int(event.get("HoldTime"))})
        elif name == "Hangup":
            self._calls.pop(uid, None)

    def _append(self, call: RoutedCall, uid: str, kind: str, data: dict[str, object]) -> None:
        event = StampedEvent(time.time(), call.channel, uid, kind, data)
        task = asyncio.get_running_loop().create_task(self.journey.append(call.journey_key, [event]))
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not store an agent event: %s", task.exception())

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
