"""An in-process journey store: for tests, and for a controller run without a database.

It keeps the :class:`~ivr.journey.ports.JourneyStore` contract except durability: nothing
survives the process, and each key keeps only its newest ``max_events_per_key`` events so a
long-running controller cannot grow without bound. Events go through the same redaction and
JSON round trip as the database backends, so a test against it sees what production stores.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

from ivr.journey import codec
from ivr.journey.errors import StoreClosed
from ivr.journey.ports import AGENT_CONNECTED, Clock, StampedEvent, check_range

MAX_EVENTS_PER_KEY = 1000


class MemoryJourney:
    def __init__(self, max_events_per_key: int = MAX_EVENTS_PER_KEY, *, clock: Clock = time.time) -> None:
        # Each event with its place in the global append order, which `between` needs to keep
        # ties in append order across keys (the per-key deques only know their own order).
        self._events: dict[str, deque[tuple[int, StampedEvent]]] = defaultdict(
            lambda: deque(maxlen=max_events_per_key))
        self._seq = itertools.count()
        self._kv: dict[tuple[str, str], tuple[str, float]] = {}
        self._clock = clock
        self._closed = False
        self._puts = 0

    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        self._check_open("append")
        rows = codec.prepare(key, events)
        self._events[key].extend(
            (next(self._seq), codec.decode_event(r.at, r.channel, r.interaction, r.type, r.data_json)) for r in rows)

    def events(self, key: str) -> list[StampedEvent]:
        """The key's events, oldest first (synchronous, for tests)."""
        return [e for _, e in self._events.get(key, ())]

    async def recent(self, key: str, *, limit: int = 100, since: float | None = None) -> list[StampedEvent]:
        self._check_open("read recent events")
        codec.check_limit(limit)
        # A stable sort on `at` keeps append order among equal timestamps; reversed gives newest first.
        ordered = sorted(self.events(key), key=lambda e: e.at)
        picked = [e for e in reversed(ordered) if since is None or e.at >= since]
        return [_copy(e) for e in picked[:limit]]

    async def interaction_events(self, interaction: str) -> list[StampedEvent]:
        self._check_open("read an interaction")
        found = [e for events in self._events.values() for _, e in events if e.interaction == interaction]
        return [_copy(e) for e in sorted(found, key=lambda e: e.at)]

    async def last_agent(self, key: str, within_s: float) -> str | None:
        self._check_open("find the last agent")
        codec.check_window(within_s)
        floor = self._clock() - within_s
        for event in await self.recent(key, limit=codec.MAX_LIMIT, since=floor):
            if event.type == AGENT_CONNECTED and (agent := codec.agent_of(event.data)) is not None:
                return agent
        return None

    async def between(self, since: float, until: float, *, limit: int = 100_000) -> list[tuple[str, StampedEvent]]:
        self._check_open("read a time range")
        check_range(since, until, limit)
        found = [(e.at, seq, key, e) for key, events in self._events.items() for seq, e in events
                 if since <= e.at < until]
        found.sort(key=lambda row: (row[0], row[1]))
        return [(key, _copy(e)) for _, _, key, e in found[:limit]]

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        self._check_open("read a kv entry")
        codec.check_kv_key(namespace, key)
        entry = self._kv.get((namespace, key))
        if entry is None or entry[1] <= self._clock():
            return None
        return dict(json.loads(entry[0]))

    async def kv_put(self, namespace: str, key: str, value: dict[str, Any], ttl_s: float) -> None:
        self._check_open("write a kv entry")
        text = codec.kv_row(namespace, key, value, ttl_s)
        self._kv[(namespace, key)] = (text, self._clock() + ttl_s)
        self._puts += 1
        if self._puts % codec.PURGE_EVERY_PUTS == 0:
            await self.purge_expired()

    async def kv_delete(self, namespace: str, key: str) -> None:
        self._check_open("delete a kv entry")
        codec.check_kv_key(namespace, key)
        self._kv.pop((namespace, key), None)

    async def purge_expired(self) -> int:
        self._check_open("purge expired kv entries")
        now = self._clock()
        expired = [k for k, (_, expires_at) in self._kv.items() if expires_at <= now]
        for k in expired:
            del self._kv[k]
        return len(expired)

    async def close(self) -> None:
        self._closed = True

    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise StoreClosed("memory", operation)


def _copy(event: StampedEvent) -> StampedEvent:
    """A copy a caller may mutate without changing what is stored."""
    return StampedEvent(event.at, event.channel, event.interaction, event.type, json.loads(json.dumps(event.data)))
