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
``kv_put`` (a peer's heartbeat, an SMS opt-out) that is not answered within
``answer_within_s`` fails with :class:`StoreUnavailable` instead of holding its call for
the store's whole busy timeout. A context token's claim is the exception
(:meth:`SpooledJourney.kv_put_or_spool`): it waits in the spool like events, so a call
routed during an outage still hands its agent a token, which resolves once the store is
back and the call's events are in it.

With a :class:`~ivr.journey.spool_file.SpoolFile`, every spooled write is also logged on
the local disk, and :meth:`SpooledJourney.recover` at the next start stores what a killed
controller left (see that module for what it does and does not guarantee). A batch whose
append failed ambiguously (the connection dropped after the commit) may be stored twice
when it is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ivr.backoff import Backoff
from ivr.journey.delegate import JourneyDelegate
from ivr.journey.errors import RequestInvalid, StoreUnavailable
from ivr.journey.ports import JourneyStore, StampedEvent
from ivr.journey.spool_file import SpoolFile

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50_000  # events; at about 300 bytes each, 15 MB
#: The longest a call waits on the journey: a store slower than this is treated as away.
ANSWER_WITHIN_S = 1.0
FLUSH_ON_CLOSE_S = 5.0
#: Spooled writes sent to the store at once, for as many keys (see SpooledJourney._wave)
WAVE = 256


@dataclass
class SpoolStats:
    """For /metrics: what waits now, and what was lost or caught up since the start."""

    waiting: int = 0  # events in the spool now
    spooled: int = 0  # events that ever went through the spool
    flushed: int = 0  # of those, stored once the store came back
    dropped: int = 0  # events refused because the spool was full
    outages: int = 0  # times the store stopped answering


@dataclass
class _Write:
    """One spooled write: a batch of events for ``key``, or (``put``) one kv entry."""

    key: str
    events: Sequence[StampedEvent] = ()
    #: the write a caller stopped waiting for; it decides this entry's fate first
    in_flight: asyncio.Future[None] | None = None
    put: tuple[str, dict[str, Any], float] | None = None  # namespace, value, expiry (time.time())
    number: int | None = None  # in the spool file, when it is logged there

    @property
    def size(self) -> int:
        return len(self.events) if self.put is None else 1

    def record(self) -> dict[str, Any]:
        """This write as a spool file line (:meth:`from_record` reads it back)."""
        if self.put is not None:
            return {"key": self.key, "put": list(self.put)}
        return {"key": self.key, "events": [[e.at, e.channel, e.interaction, e.type, e.data] for e in self.events]}

    @classmethod
    def from_record(cls, record: dict[str, Any], number: int | None) -> _Write:
        if "put" in record:
            namespace, value, expires_at = record["put"]
            return cls(str(record["key"]), put=(str(namespace), dict(value), float(expires_at)), number=number)
        return cls(str(record["key"]), [StampedEvent(float(at), str(channel), str(interaction), str(type_), dict(data))
                                        for at, channel, interaction, type_, data in record["events"]], number=number)

    async def send(self, store: JourneyStore) -> None:
        if self.put is None:
            await store.append(self.key, self.events)
            return
        namespace, value, expires_at = self.put
        ttl_s = expires_at - time.time()
        if ttl_s > 0:  # an entry that expired while the store was away is not written
            await store.kv_put(namespace, self.key, value, ttl_s)


class SpooledJourney(JourneyDelegate):
    """A :class:`JourneyStore` whose ``append`` survives the store being away for a while."""

    def __init__(self, inner: JourneyStore, *, limit: int = DEFAULT_LIMIT, backoff: Backoff | None = None,
                 answer_within_s: float = ANSWER_WITHIN_S, file: SpoolFile | None = None) -> None:
        super().__init__(inner)
        self.file = file
        self.limit = limit
        self.answer_within_s = answer_within_s
        self.stats = SpoolStats()
        self._queue: deque[_Write] = deque()
        self._backoff = backoff or Backoff()
        self._flusher: asyncio.Task[None] | None = None
        self._since = 0.0

    def recover(self) -> int:
        """Queue what controllers killed during an outage left in the spool directory (before
        anything of this one); returns how many writes. Call once, at start."""
        if self.file is None:
            return 0
        recovered = 0
        for leftover in self.file.take_over():
            try:
                entry = _Write.from_record(leftover.record, leftover.number)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("journey spool: an unreadable write in a left spool file is skipped (%s)", exc)
                self.file.done(leftover.number)
                continue
            self._queue.append(entry)
            self.stats.waiting += entry.size
            self.stats.spooled += entry.size
            recovered += 1
        if recovered:
            self._since = time.monotonic()
            self._flusher = asyncio.create_task(self._flush(), name="journey-spool")
        return recovered

    # -- the spooled writes --------------------------------------------------------------------
    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        await self._write_or_spool(_Write(key, events))  # dropped: logged

    async def kv_put_or_spool(self, namespace: str, key: str, value: dict[str, Any],
                              ttl_s: float) -> Literal["stored", "spooled"]:
        """Put now, or keep the put in the spool, in order with the events, when the store is
        away; raises :class:`StoreUnavailable` only when the spool is full."""
        entry = _Write(key, put=(namespace, value, time.time() + ttl_s))
        outcome = await self._write_or_spool(entry)
        if outcome == "dropped":
            raise StoreUnavailable("journey", f"put {namespace}", RuntimeError("the journey spool is full"))
        return outcome

    async def _write_or_spool(self, entry: _Write) -> Literal["stored", "spooled", "dropped"]:
        """Write at once when nothing waits and the store answers in time; otherwise spool the write."""
        if not self._queue:
            write = asyncio.ensure_future(entry.send(self.inner))
            write.add_done_callback(_seen)
            try:
                async with asyncio.timeout(self.answer_within_s):
                    await asyncio.shield(write)
                return "stored"
            except StoreUnavailable as exc:
                self._outage(f"unavailable ({exc})")
            except TimeoutError:
                self._outage(f"not answering within {self.answer_within_s:g} s")
                entry.in_flight = write  # decided by that write: stored once either way
        return "spooled" if self._spool(entry) else "dropped"

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

    def _spool(self, entry: _Write) -> bool:
        """Queue ``entry`` behind the others; False (counted, logged) when the spool is full."""
        if entry.in_flight is None and self.stats.waiting + entry.size > self.limit:
            self.stats.dropped += entry.size
            log.error("journey spool full (%d events waiting for %.0f s): %d events of %s DROPPED",
                      self.stats.waiting, time.monotonic() - self._since, entry.size, entry.key)
            return False
        if self.file is not None:
            entry.number = self.file.add(entry.record())
        self._queue.append(entry)
        self.stats.waiting += entry.size
        self.stats.spooled += entry.size
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="journey-spool")
        return True

    async def _flush(self) -> None:
        """Send the spool to the store in waves until it is empty (see :meth:`_wave`)."""
        self._backoff.reset()
        while self._queue:
            wave = self._wave()
            outcomes = await asyncio.gather(*(self._send(entry) for entry in wave))
            failed = [entry for entry, stored in zip(wave, outcomes, strict=True) if not stored]
            for _ in wave:
                self._queue.popleft()
            self._queue.extendleft(reversed(failed))  # at the head again, in their order
            if failed:
                await asyncio.sleep(self._backoff.next_delay())
            else:
                self._backoff.reset()

    def _wave(self) -> list[_Write]:
        """The writes at the head of the spool that may go at once: up to :data:`WAVE` of them, no
        two for one key (a key's writes stay in order). Sent one by one, a spool filled under load
        drained at one commit per write, slower than the calls filled it; at once, the SQLite
        writer commits a wave together and PostgreSQL spreads it over its pool."""
        wave: list[_Write] = []
        keys: set[str] = set()
        for entry in self._queue:
            if entry.key in keys or len(wave) == WAVE:
                break
            keys.add(entry.key)
            wave.append(entry)
        return wave

    async def _send(self, entry: _Write) -> bool:
        """Store one spooled write; False when the store is away (it stays in the spool)."""
        try:
            if entry.in_flight is not None:
                await asyncio.shield(entry.in_flight)  # the write a call stopped waiting for: its fate first
            else:
                await entry.send(self.inner)
        except StoreUnavailable:
            entry.in_flight = None
            return False
        except RequestInvalid as exc:  # the store will never take it: do not block the rest
            log.error("journey spool: %d events of %s refused by the store (%s)", entry.size, entry.key, exc)
            self.stats.dropped += entry.size
        else:
            self.stats.flushed += entry.size
        self.stats.waiting -= entry.size
        if self.file is not None:
            self.file.done(entry.number)
        return True

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
                if self.file is not None:
                    log.error("journey spool: %d events still waiting at shutdown are left in %s for the next "
                              "start", self.stats.waiting, self.file.path)
                else:
                    log.error("journey spool: %d events still waiting at shutdown are lost", self.stats.waiting)
                self._flusher.cancel()
        if self.file is not None:
            self.file.close()  # deleted already when it emptied; otherwise kept for the next start
        await self.inner.close()


def _seen(write: asyncio.Future[None]) -> None:
    """A write nobody awaits any more (its call ended) must not warn that its error went unread."""
    if not write.cancelled():
        write.exception()
