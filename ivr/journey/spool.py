"""A journey store that keeps accepting events while the database is away.

PostgreSQL restarts (an upgrade, a failover) and SQLite locks up (a full disk); a call in
progress must not notice. :class:`SpooledJourney` wraps a store: an ``append`` the store
cannot take (:class:`StoreUnavailable`) is kept in a bounded in-process spool, and so is
every ``append`` after it until the spool is empty again, so the events of a key reach
the store in the order they happened. A background task retries the oldest batch with
backoff and sends the rest after it once the store answers.

The spool is bounded (``limit`` events). When it is full a new batch is dropped, counted
and logged at error level, never waited for: a call must not hang on the journey.
Everything else (reads, kv puts, ``put_and_append``) goes straight to the store: those
need the store's answer (a USSD session's conditional put) and fail as before.

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

from ivr.backoff import Backoff
from ivr.journey.delegate import JourneyDelegate
from ivr.journey.errors import RequestInvalid, StoreUnavailable
from ivr.journey.ports import JourneyStore, StampedEvent

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50_000  # events; at about 300 bytes each, 15 MB
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

    def __init__(self, inner: JourneyStore, *, limit: int = DEFAULT_LIMIT, backoff: Backoff | None = None) -> None:
        super().__init__(inner)
        self.limit = limit
        self.stats = SpoolStats()
        self._queue: deque[tuple[str, Sequence[StampedEvent]]] = deque()
        self._backoff = backoff or Backoff()
        self._flusher: asyncio.Task[None] | None = None
        self._since = 0.0

    # -- the one spooled write ---------------------------------------------------------------
    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        if not self._queue:
            try:
                await self.inner.append(key, events)
                return
            except StoreUnavailable as exc:
                self.stats.outages += 1
                self._since = time.monotonic()
                log.warning("journey store unavailable (%s): spooling events until it answers", exc)
        self._spool(key, events)

    def _spool(self, key: str, events: Sequence[StampedEvent]) -> None:
        if self.stats.waiting + len(events) > self.limit:
            self.stats.dropped += len(events)
            log.error("journey spool full (%d events waiting for %.0f s): %d events of %s DROPPED",
                      self.stats.waiting, time.monotonic() - self._since, len(events), key)
            return
        self._queue.append((key, events))
        self.stats.waiting += len(events)
        self.stats.spooled += len(events)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="journey-spool")

    async def _flush(self) -> None:
        self._backoff.reset()
        while self._queue:
            key, events = self._queue[0]
            try:
                await self.inner.append(key, events)
            except StoreUnavailable:
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
