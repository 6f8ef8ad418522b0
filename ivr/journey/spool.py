"""A journey store that keeps accepting events while the database is away.

PostgreSQL restarts (an upgrade, a failover) and SQLite locks up (a full disk); a call in
progress must not notice. :class:`SpooledJourney` wraps a store: an ``append`` the store
cannot take (:class:`StoreUnavailable`) is kept in a bounded in-process spool, and so is
every ``append`` after it until the spool is empty again, so the events of a key reach
the store in the order they happened. A background task retries the oldest batch with
backoff and sends the rest after it once the store answers.

A store that hangs rather than fails (SQLite waits up to its busy timeout on a locked file,
PostgreSQL on a dead connection) is not waited for either: an append not answered within
``answer_within_s`` goes on in the background at the head of the spool, and everything after
it queues behind it. If that write then succeeds, it is not written again; if it fails, the
flusher retries it like any other spooled batch.

The spool is bounded (``limit`` events). When it is full a new batch is dropped, counted
and logged at error level, never waited for: a call must not hang on the journey.
Everything else (reads, kv puts, ``put_and_append``) goes straight to the store: those
need the store's answer (a USSD session's conditional put) and fail as before. A plain
``kv_put`` (a context token's claim, a peer's heartbeat, an SMS opt-out) that is not answered
within ``answer_within_s`` fails with :class:`StoreUnavailable` instead of holding its call
for the store's whole busy timeout: a call routed then goes to its agent without a token.

What this does not cover: events in the spool are in memory, so a controller killed
during an outage loses them; and a batch whose append failed ambiguously (the connection
dropped after the commit) may be stored twice when it is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ivr.backoff import Backoff
from ivr.journey.delegate import JourneyDelegate
from ivr.journey.errors import RequestInvalid, StoreUnavailable
from ivr.journey.ports import JourneyStore, StampedEvent

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50_000  # events; at about 300 bytes each, 15 MB
#: The longest a call waits on the journey: a store slower than this is treated as away.
ANSWER_WITHIN_S = 1.0
FLUSH_ON_CLOSE_S = 5.0


@dataclass
class SpoolStats:
    """For /metrics: what waits now, and what was lost or caught up since the start."""

    waiting: int = 0  # events in the spool now
    spooled: int = 0  # events that ever went through the spool
    flushed: int = 0  # of those, stored once the store came back
    dropped: int = 0  # events refused because the spool was full
    outages: int = 0  # times the store stopped answering


class SpooledJourney(JourneyDelegate):
    """A :class:`JourneyStore` whose ``append`` survives the store being away for a while."""

    def __init__(self, inner: JourneyStore, *, limit: int = DEFAULT_LIMIT, backoff: Backoff | None = None,
                 answer_within_s: float = ANSWER_WITHIN_S) -> None:
        super().__init__(inner)
        self.limit = limit
        self.answer_within_s = answer_within_s
        self.stats = SpoolStats()
        # (key, events, the write still in flight for them, or None)
        self._queue: deque[tuple[str, Sequence[StampedEvent], asyncio.Future[None] | None]] = deque()
        self._backoff = backoff or Backoff()
        self._flusher: asyncio.Task[None] | None = None
        self._since = 0.0

    # -- the one spooled write ---------------------------------------------------------------
    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        if not self._queue:
            write = asyncio.ensure_future(self.inner.append(key, events))
            write.add_done_callback(_seen)
            try:
                async with asyncio.timeout(self.answer_within_s):
                    await asyncio.shield(write)
                return
            except StoreUnavailable as exc:
                self._outage(f"unavailable ({exc})")
            except TimeoutError:
                self._outage(f"not answering within {self.answer_within_s:g} s")
                self._spool(key, events, write)  # decided by that write: stored once either way
                return
        self._spool(key, events)

    async def kv_put(self, namespace: str, key: str, value: dict[str, Any], ttl_s: float) -> None:
        try:
            async with asyncio.timeout(self.answer_within_s):
                await self.inner.kv_put(namespace, key, value, ttl_s)
        except TimeoutError:
            raise StoreUnavailable("journey", f"put {namespace} within {self.answer_within_s:g} s",
                                   TimeoutError("the store did not answer")) from None

    def _outage(self, how: str) -> None:
        self.stats.outages += 1
        self._since = time.monotonic()
        log.warning("journey store %s: spooling events until it answers", how)

    def _spool(self, key: str, events: Sequence[StampedEvent], in_flight: asyncio.Future[None] | None = None) -> None:
        if in_flight is None and self.stats.waiting + len(events) > self.limit:
            self.stats.dropped += len(events)
            log.error("journey spool full (%d events waiting for %.0f s): %d events of %s DROPPED",
                      self.stats.waiting, time.monotonic() - self._since, len(events), key)
            return
        self._queue.append((key, events, in_flight))
        self.stats.waiting += len(events)
        self.stats.spooled += len(events)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="journey-spool")

    async def _flush(self) -> None:
        self._backoff.reset()
        while self._queue:
            key, events, in_flight = self._queue[0]
            try:
                if in_flight is not None:
                    await asyncio.shield(in_flight)  # the write a call stopped waiting for: its fate first
                else:
                    await self.inner.append(key, events)
            except StoreUnavailable:
                self._queue[0] = (key, events, None)
                await asyncio.sleep(self._backoff.next_delay())
                continue
            except RequestInvalid as exc:  # the store will never take it: do not block the rest
                log.error("journey spool: %d events of %s refused by the store (%s)", len(events), key, exc)
                self.stats.dropped += len(events)
            else:
                self.stats.flushed += len(events)
            self._queue.popleft()
            self.stats.waiting -= len(events)
        log.warning("journey store back: the spool is empty after %.1f s (%d events caught up so far)",
                    time.monotonic() - self._since, self.stats.flushed)

    async def drained(self) -> None:
        """Return once the spool is empty (tests, and a clean shutdown)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            try:
                async with asyncio.timeout(FLUSH_ON_CLOSE_S):
                    await self.drained()
            except TimeoutError:
                log.error("journey spool: %d events still waiting at shutdown are lost", self.stats.waiting)
                self._flusher.cancel()
        await self.inner.close()


def _seen(write: asyncio.Future[None]) -> None:
    """A write nobody awaits any more (its call ended) must not warn that its error went unread."""
    if not write.cancelled():
        write.exception()
