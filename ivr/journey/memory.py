"""An in-process journey store: for tests, and for a controller run without a database.

It keeps the :class:`~ivr.journey.ports.JourneyStore` contract except durability: nothing
survives the process, and each key keeps only its newest ``max_events_per_key`` events so a
long-running controller cannot grow without bound. Events go through the same redaction and
JSON round trip as the database backends, so a test against it sees what production stores.
Events are kept as that JSON and decoded when read: appends are many, reads are few.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

from ivr.journey import codec
from ivr.journey.errors import StoreClosed, WriteConflict
from ivr.journey.events import AGENT_CONNECTED
from ivr.journey.ports import ABSENT, Clock, KvPut, StampedEvent, check_range

MAX_EVENTS_PER_KEY = 1000
#: Seconds between sweeps of expired kv entries. A sweep walks the whole table, so it is
#: paced by time, not by puts: at thousands of puts a second a sweep every 256 puts cost
#: more than the puts themselves.
SWEEP_INTERVAL_S = 1.0


class MemoryJourney:
    def __init__(self, max_events_per_key: int = MAX_EVENTS_PER_KEY, *, clock: Clock = time.time) -> None:
        # Each event with its place in the global append order, which `between` needs to keep
        # ties in append order across keys (the per-key deques only know their own order).
        self._events: dict[str, deque[tuple[int, codec.EventRow]]] = defaultdict(
            lambda: deque(maxlen=max_events_per_key))
        self._seq = itertools.count()
        self._kv: dict[tuple[str, str], tuple[str, float]] = {}
        self._clock = clock
        self._closed = False
        self._swept = clock()

    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        self._check_open("append")
        rows = codec.prepare(key, events)
        self._events[key].extend((next(self._seq), row) for row in rows)

    def events(self, key: str) -> list[StampedEvent]:
        """The key's events, oldest first (synchronous, for tests); fresh copies, free to mutate."""
        return [_decoded(row) for _, row in self._events.get(key, ())]

    async def recent(self, key: str, *, limit: int = 100, since: float | None = None) -> list[StampedEvent]:
        self._check_open("read recent events")
        codec.check_limit(limit)
        # A stable sort on `at` keeps append order among equal timestamps; reversed gives newest first.
        ordered = sorted(self.events(key), key=lambda e: e.at)
        picked = [e for e in reversed(ordered) if since is None or e.at >= since]
        return picked[:limit]

    async def interaction_events(self, interaction: str) -> list[StampedEvent]:
        self._check_open("read an interaction")
        found = [_decoded(r) for rows in self._events.values() for _, r in rows if r.interaction == interaction]
        return sorted(found, key=lambda e: e.at)

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
        found = [(r.at, seq, key, r) for key, rows in self._events.items() for seq, r in rows
                 if since <= r.at < until]
        found.sort(key=lambda row: (row[0], row[1]))
        return [(key, _decoded(r)) for _, _, key, r in found[:limit]]

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        text = await self.kv_get_text(namespace, key)
        return None if text is None else dict(json.loads(text))

    async def kv_get_text(self, namespace: str, key: str) -> str | None:
        self._check_open("read a kv entry")
        codec.check_kv_key(namespace, key)
        entry = self._kv.get((namespace, key))
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    async def kv_scan(self, namespace: str, *, limit: int = 10_000) -> list[tuple[str, dict[str, Any]]]:
        self._check_open("list kv entries")
        now = self._clock()
        found = sorted((key, text) for (ns, key), (text, expires) in self._kv.items()
                       if ns == namespace and expires > now)
        return [(key, dict(json.loads(text))) for key, text in found[:limit]]

    async def kv_put(self, namespace: str, key: str, value: dict[str, Any], ttl_s: float) -> None:
        self._check_open("write a kv entry")
        text = codec.kv_row(namespace, key, value, ttl_s)
        now = self._clock()
        self._kv[(namespace, key)] = (text, now + ttl_s)
        self._sweep(now)

    async def put_and_append(self, puts: Sequence[KvPut], key: str, events: Sequence[StampedEvent]) -> None:
        self._check_open("write kv entries and append")
        texts = [codec.put_text(p) for p in puts]  # every check first
        rows = codec.prepare(key, events)
        now = self._clock()
        for put in puts:
            if put.expect is not None:
                entry = self._kv.get((put.namespace, put.key))
                stored = entry[0] if entry is not None and entry[1] > now else ABSENT
                if stored != put.expect:
                    raise WriteConflict("memory", put.namespace, put.key)
        for put, text in zip(puts, texts, strict=True):
            self._kv[(put.namespace, put.key)] = (text, now + put.ttl_s)
        self._events[key].extend((next(self._seq), row) for row in rows)
        if puts:
            self._sweep(now)

    async def kv_delete(self, namespace: str, key: str) -> None:
        self._check_open("delete a kv entry")
        codec.check_kv_key(namespace, key)
        self._kv.pop((namespace, key), None)

    async def purge_expired(self) -> int:
        self._check_open("purge expired kv entries")
        return self._purge(self._clock())

    def _sweep(self, now: float) -> None:
        if now - self._swept >= SWEEP_INTERVAL_S:
            self._purge(now)

    def _purge(self, now: float) -> int:
        self._swept = now
        expired = [k for k, (_, expires_at) in self._kv.items() if expires_at <= now]
        for k in expired:
            del self._kv[k]
        return len(expired)

    async def close(self) -> None:
        self._closed = True

    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise StoreClosed("memory", operation)


def _decoded(row: codec.EventRow) -> StampedEvent:
    return codec.decode_event(row.at, row.channel, row.interaction, row.type, row.data_json)
