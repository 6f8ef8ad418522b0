"""What ``app_queue`` says about its queues, polled over AMI (``QueueStatus``).

One poll answers everything the wait estimates and the callback dialer need: each
queue's averages (``QueueParams``: Holdtime, TalkTime), its members (logged in, paused,
in use) and its entries in order (``QueueEntry``: position, channel, wait, priority).
Sessions read the last snapshot without waiting (:mod:`ivr.callbacks.wait`).

QueueStatus gives an entry's wait in whole seconds, as of the poll; a callback must not
overtake a caller who joined half a second before it asked. So the monitor also follows
``QueueCallerJoin`` events and keeps each entry's join time to the event; an entry it did
not see join (the controller started after) falls back to the poll's time minus its wait,
minus half a second (the middle of the truncated second).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ivr.callbacks.wait import QueueWait

log = logging.getLogger(__name__)
SLOT_CONTEXT = "ivr-callback-slot"  # where the place's half (;1) waits in Queue()
HOLD_CONTEXT = "ivr-callback-hold"  # what the dialer dials: both halves are named Local/<id>@ivr-callback-hold-...
UNAVAILABLE_STATES = frozenset({"4", "5"})  # AST_DEVICE_INVALID, AST_DEVICE_UNAVAILABLE (not registered)
NOT_INUSE = "1"


#: The AMI events the queue monitor reads (queue state itself is polled with QueueStatus).
EVENTS = ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon")

class QueueStatusSource(Protocol):
    async def queue_status(self) -> list[dict[str, str]]: ...

    async def action(self, action: Mapping[str, str], timeout: float = 10.0) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class QueueEntry:
    queue: str
    position: int
    channel: str
    uniqueid: str
    wait_s: float
    priority: int
    joined_at: float = 0.0  # when it joined the queue (epoch seconds), as precisely as the monitor knows

    @property
    def callback_id(self) -> str | None:
        """The callback whose place this is (``Local/<id>@ivr-callback-hold-...;1``), or None."""
        if not self.channel.startswith("Local/cb") or f"@{HOLD_CONTEXT}-" not in self.channel:
            return None
        return self.channel[len("Local/"):].split("@", 1)[0]


class QueueMonitor:
    def __init__(self, ami: QueueStatusSource, clock: Callable[[], float] = time.time) -> None:
        self.ami = ami
        self.clock = clock
        self._waits: dict[str, QueueWait] = {}
        self._entries: dict[str, list[QueueEntry]] = {}
        self._joined: dict[str, float] = {}  # Uniqueid -> when its QueueCallerJoin arrived
        self.polled_at = 0.0
        #: The Asterisk's system name (AMI CoreSettings), once asked; "" when it has none.
        self.system_name: str | None = None

    def on_event(self, event: Mapping[str, str]) -> None:
        """An AMI event: remember when each queue entry joined, to the event."""
        uniqueid = event.get("Uniqueid", "")
        if not uniqueid:
            return
        name = event.get("Event")
        if name == "QueueCallerJoin":
            self._joined.setdefault(uniqueid, self.clock())
        elif name in ("QueueCallerLeave", "QueueCallerAbandon"):
            self._joined.pop(uniqueid, None)

    def snapshot(self) -> Mapping[str, QueueWait]:
        return self._waits

    def entries(self, queue: str) -> list[QueueEntry]:
        return self._entries.get(queue, [])

    def all_entries(self) -> list[QueueEntry]:
        return [e for entries in self._entries.values() for e in entries]

    async def refresh(self) -> None:
        """Poll ``QueueStatus`` once; raises what the AMI client raises (the caller retries)."""
        if self.system_name is None:
            reply = await self.ami.action({"Action": "CoreSettings"})
            self.system_name = str(reply.get("SystemName") or "")
        asked = self.clock()
        rows = await self.ami.queue_status()
        self._waits, entries = parse_queue_status(rows)
        self._entries = {queue: [dataclasses.replace(e, joined_at=self._joined.get(e.uniqueid)
                                                     or asked - e.wait_s - 0.5) for e in listed]
                         for queue, listed in entries.items()}
        present = {e.uniqueid for listed in entries.values() for e in listed}
        for gone in [u for u in self._joined if u not in present and self._joined[u] < asked - 5]:
            del self._joined[gone]  # a leave missed while AMI was down
        self.polled_at = asked


class QueueBoard:
    """Every Asterisk's queues as this controller sees them, by the Asterisk's system name.

    Each Asterisk of a cluster has queues of its own: a call hears the place and wait of the
    queues of the Asterisk it is on. A call from an Asterisk not polled here (or one whose
    name is not known yet) hears the home Asterisk's."""

    def __init__(self, home: QueueMonitor, monitors: Sequence[QueueMonitor] = ()) -> None:
        self.home = home
        self.monitors = list(monitors)

    def snapshot(self, node: str = "") -> Mapping[str, QueueWait]:
        if node:
            for monitor in self.monitors:
                if monitor.system_name == node:
                    return monitor.snapshot()
        return self.home.snapshot()


async def keep_fresh(monitor: QueueMonitor, interval_s: float = 1.0) -> None:
    """Poll ``monitor`` every ``interval_s`` unless something else just did.

    The callback dialer polls its monitor every round; a controller that does not dial (its
    lease is elsewhere, or the callbacks' Asterisk is not its own) still tells its callers
    their place and wait, so its own queues are polled here."""
    failing = ""
    while True:
        if monitor.clock() - monitor.polled_at >= interval_s * 0.9:
            try:
                await monitor.refresh()
                failing = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - AMI away: the waits stay as last seen, polled again
                if str(exc) != failing:
                    log.warning("queue waits not refreshed: %s (retrying every %.0f s)", exc, interval_s)
                failing = str(exc)
        await asyncio.sleep(interval_s)


def parse_queue_status(rows: list[dict[str, str]]) -> tuple[dict[str, QueueWait], dict[str, list[QueueEntry]]]:
    params: dict[str, dict[str, str]] = {}
    members: dict[str, list[dict[str, str]]] = {}
    entries: dict[str, list[QueueEntry]] = {}
    for row in rows:
        event, queue = row.get("Event"), row.get("Queue", "")
        if event == "QueueParams":
            params[queue] = row
        elif event == "QueueMember":
            members.setdefault(queue, []).append(row)
        elif event == "QueueEntry":
            entries.setdefault(queue, []).append(QueueEntry(
                queue, _int(row.get("Position")), row.get("Channel", ""), row.get("Uniqueid", ""),
                float(_int(row.get("Wait"))), _int(row.get("Priority"))))
    waits: dict[str, QueueWait] = {}
    for queue, p in params.items():
        queued = sorted(entries.get(queue, []), key=lambda e: e.position)
        entries[queue] = queued
        present = [m for m in members.get(queue, [])
                   if m.get("Status") not in UNAVAILABLE_STATES and m.get("Paused", "0") == "0"]
        free = [m for m in present if m.get("Status") == NOT_INUSE and m.get("InCall", "0") == "0"]
        waits[queue] = QueueWait(
            queue, waiting=len(queued), callbacks=sum(1 for e in queued if e.callback_id),
            agents=len(present), free=len(free), holdtime_s=float(_int(p.get("Holdtime"))),
            talktime_s=float(_int(p.get("TalkTime"))), longest_s=max((e.wait_s for e in queued), default=0.0))
    return waits, entries


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
