"""New journey events as they are stored, for the pages that are open on them.

An agent's page stays open while the customer goes on: presses keys in the IVR, opens a
USSD session, is transferred, gets another agent's note. The page subscribes to the
customer's journey key; every append this process stores is offered to the subscribers
of its key right after the store confirmed it (never before: a page must not show what
the store may not have). Events are passed through the store's own redaction first, so a
page sees exactly what a reload would.

A slow page must not slow the calls: each subscription holds at most
:data:`MAX_QUEUED` events and a page that falls behind is told to resync (it reloads the
journey from the store) instead of blocking the writer. Events written by another process
(a second controller) are not seen here; the page's poll of the store covers them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from ivr.journey.ports import StampedEvent
from ivr.journey.redact import redact

log = logging.getLogger(__name__)

MAX_QUEUED = 256


@dataclass(eq=False)
class Subscription:
    key: str
    queue: asyncio.Queue[StampedEvent] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUED))
    overflowed: bool = False

    async def next(self, timeout_s: float) -> StampedEvent | None:
        """The next event, or None after ``timeout_s`` (time for a heartbeat or a poll)."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self.queue.get()
        except TimeoutError:
            return None


class JourneyFeed:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}

    def subscribe(self, key: str) -> Subscription:
        sub = Subscription(key)
        self._subscribers.setdefault(key, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.key]

    def subscribers(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def publish(self, key: str, events: Sequence[StampedEvent]) -> None:
        subs = self._subscribers.get(key)
        if not subs:
            return
        stored = [redact(e) for e in events]
        for sub in subs:
            for event in stored:
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    sub.overflowed = True
                    break
