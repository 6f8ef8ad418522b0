"""The default journey store: one SQLite file, durable per append, group-committed.

Durability. WAL journal with ``synchronous=FULL``: COMMIT returns only after the WAL is
fsynced, so an append that returned survives a kill -9 of the process and a power cut.
``synchronous="NORMAL"`` is offered for disposable deployments: in WAL mode it still
survives kill -9 (the WAL write is in the kernel's page cache before COMMIT returns) but
may lose the last commits on a power cut or kernel crash.

Throughput. Every write goes through one connection owned by one thread. That thread takes
every write waiting in its queue, runs them in one transaction and commits once, so when
fifty calls append at the same moment one fsync serves them all (group commit). Each
caller's ``await`` returns only after the commit its write was part of. If a batch fails,
its writes are retried one by one, so one bad write cannot fail its neighbours. A write
whose caller was cancelled before the writer took it is not written.

Reads use their own connections on a small thread pool (WAL lets them run while the writer
commits), so a screen pop does not queue behind writes. The one exception is ``kv_get``,
the USSD gateway's per-request read: a primary-key lookup that takes microseconds, less
than the hop to a pool thread and back. It runs on the event loop's own read-only
connection, which in WAL mode never waits for the writer; should SQLite still answer
"busy" (a WAL recovery after a crash), that read goes to the pool instead.

Several processes may open the same file (the USSD gateway's processes sharing kv state):
SQLite serialises writers across processes with its file lock and ``busy_timeout``. The
file must be on a local filesystem (WAL needs shared memory).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import BrokenThreadPool
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

from ivr.journey import codec
from ivr.journey.errors import RequestInvalid, StoreClosed, StoreUnavailable, WriteConflict
from ivr.journey.ports import ABSENT, AGENT_CONNECTED, Clock, KvPut, StampedEvent, check_range

T = TypeVar("T")

BACKEND = "sqlite"
BUSY_TIMEOUT_MS = 10_000  # another process holding the write lock (a checkpoint, a USSD worker)
MAX_BATCH = 1000  # writes per group commit; bounds one transaction's size and latency
INLINE_CACHE_KIB = 16 * 1024  # page cache of the event loop's own read connection (kv reads)
SCHEMA_VERSION = 1

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS journey_event (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    at REAL NOT NULL,
    channel TEXT NOT NULL,
    interaction TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journey_event_key_at ON journey_event (key, at, seq);
CREATE INDEX IF NOT EXISTS journey_event_interaction ON journey_event (interaction, at, seq);
CREATE INDEX IF NOT EXISTS journey_event_agent ON journey_event (key, at, seq) WHERE type = '{AGENT_CONNECTED}';
CREATE INDEX IF NOT EXISTS journey_event_at ON journey_event (at, seq);
CREATE TRIGGER IF NOT EXISTS journey_event_no_update BEFORE UPDATE ON journey_event
BEGIN SELECT RAISE(ABORT, 'journey events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS journey_event_no_delete BEFORE DELETE ON journey_event
BEGIN SELECT RAISE(ABORT, 'journey events are append-only'); END;
CREATE TABLE IF NOT EXISTS journey_kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS journey_kv_expires ON journey_kv (expires_at);
PRAGMA user_version = {SCHEMA_VERSION};
"""

_INSERT_EVENT = "INSERT INTO journey_event (key, at, channel, interaction, type, data) VALUES (?, ?, ?, ?, ?, ?)"
_RECENT = """SELECT at, channel, interaction, type, data FROM journey_event
WHERE key = ? AND at >= ? ORDER BY at DESC, seq DESC LIMIT ?"""
_INTERACTION = """SELECT at, channel, interaction, type, data FROM journey_event
WHERE interaction = ? ORDER BY at, seq"""
_BETWEEN = """SELECT key, at, channel, interaction, type, data FROM journey_event
WHERE at >= ? AND at < ? ORDER BY at, seq LIMIT ?"""
_LAST_AGENT = f"""SELECT data FROM journey_event
WHERE key = ? AND type = '{AGENT_CONNECTED}' AND at >= ?
  AND json_type(data, '$.agent') IN ('text', 'integer', 'real') AND json_extract(data, '$.agent') <> ''
ORDER BY at DESC, seq DESC LIMIT 1"""
_KV_GET = "SELECT value FROM journey_kv WHERE namespace = ? AND key = ? AND expires_at > ?"
_KV_PUT = """INSERT INTO journey_kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"""
# Compare-and-set puts (KvPut.expect): each changes one row, or none when the condition fails.
_KV_PUT_IF_ABSENT = """INSERT INTO journey_kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
WHERE journey_kv.expires_at <= ?"""
_KV_PUT_IF_VALUE = """UPDATE journey_kv SET value = ?, expires_at = ?
WHERE namespace = ? AND key = ? AND value = ? AND expires_at > ?"""
_KV_DELETE = "DELETE FROM journey_kv WHERE namespace = ? AND key = ?"
_KV_PURGE = "DELETE FROM journey_kv WHERE expires_at <= ?"

Synchronous = Literal["FULL", "NORMAL"]
WriteFn = Callable[[sqlite3.Connection], Any]
"""Runs in the writer thread. It must return plain values, never a cursor: a cursor freed
in the event loop's thread would touch the connection while the writer uses it."""


class SqliteJourneyStore:
    """A :class:`~ivr.journey.ports.JourneyStore` in one SQLite file. Build it with :meth:`open`."""

    def __init__(self, path: Path, writer: _Writer, readers: ThreadPoolExecutor, reader_pool: _ReaderPool,
                 clock: Clock, inline: sqlite3.Connection) -> None:
        self.path = path
        self._writer = writer
        self._readers = readers
        self._reader_pool = reader_pool
        self._inline = inline
        self._clock = clock
        self._closed = False
        self._purges = codec.PurgeSchedule()

    @classmethod
    async def open(cls, path: str | Path, *, clock: Clock = time.time, synchronous: Synchronous = "FULL",
                   readers: int = 2, max_batch: int = MAX_BATCH) -> SqliteJourneyStore:
        """Open (creating if needed) the store at ``path``, a file on a local filesystem."""
        if synchronous not in ("FULL", "NORMAL"):
            raise RequestInvalid("sqlite synchronous", f"must be 'FULL' or 'NORMAL', got {synchronous!r}")
        path = Path(path)
        writer = _Writer(str(path), synchronous, max_batch)
        try:
            await asyncio.wrap_future(writer.start())
        except sqlite3.Error as exc:
            raise StoreUnavailable(BACKEND, f"open {path}", exc) from exc
        try:
            inline = _read_only(str(path), busy_timeout_ms=0)
            # Every USSD request reads its session record here, each a different key: a
            # page cache above SQLite's default 2 MB keeps the kv table's inner pages, and
            # a read then costs about 10 µs instead of 13-16 (bench/RESULTS.md).
            inline.execute(f"PRAGMA cache_size = -{INLINE_CACHE_KIB}")
        except sqlite3.Error as exc:
            writer.stop()
            raise StoreUnavailable(BACKEND, f"open {path}", exc) from exc
        pool = _ReaderPool(str(path))
        executor = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="journey-sqlite-reader",
                                      initializer=pool.open_for_thread)
        return cls(path, writer, executor, pool, clock, inline)

    async def __aenter__(self) -> SqliteJourneyStore:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def commits(self) -> tuple[int, int]:
        """(transactions committed, writes in them): their ratio is the group-commit factor."""
        return self._writer.batches, self._writer.writes

    # -- journey ---------------------------------------------------------------------------

    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        await self._put_rows("append journey events", (), key, events)

    async def recent(self, key: str, *, limit: int = 100, since: float | None = None) -> list[StampedEvent]:
        codec.check_limit(limit)
        floor = -math.inf if since is None else since
        rows = await self._read("read recent events", lambda c: c.execute(_RECENT, (key, floor, limit)).fetchall())
        return [codec.decode_event(*row) for row in rows]

    async def interaction_events(self, interaction: str) -> list[StampedEvent]:
        rows = await self._read("read an interaction", lambda c: c.execute(_INTERACTION, (interaction,)).fetchall())
        return [codec.decode_event(*row) for row in rows]

    async def last_agent(self, key: str, within_s: float) -> str | None:
        codec.check_window(within_s)
        floor = self._clock() - within_s
        row = await self._read("find the last agent", lambda c: c.execute(_LAST_AGENT, (key, floor)).fetchone())
        return None if row is None else codec.agent_of(row[0])

    async def between(self, since: float, until: float, *, limit: int = 100_000) -> list[tuple[str, StampedEvent]]:
        check_range(since, until, limit)
        rows = await self._read("read a time range",
                                lambda c: c.execute(_BETWEEN, (since, until, limit)).fetchall())
        return [(row[0], codec.decode_event(*row[1:])) for row in rows]

    # -- kv --------------------------------------------------------------------------------

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        text = await self.kv_get_text(namespace, key)
        return None if text is None else dict(json.loads(text))

    async def kv_get_text(self, namespace: str, key: str) -> str | None:
        codec.check_kv_key(namespace, key)
        self._check_open("read a kv entry")
        now = self._clock()
        # fetchall, not fetchone: stepping to the end resets the statement at once, so the
        # read transaction never outlives the call (an open one would hold back checkpoints).
        try:
            rows = self._inline.execute(_KV_GET, (namespace, key, now)).fetchall()
        except sqlite3.OperationalError:  # busy: the pool's connections wait for it
            rows = await self._read("read a kv entry",
                                    lambda c: c.execute(_KV_GET, (namespace, key, now)).fetchall())
        except sqlite3.Error as exc:
            raise StoreUnavailable(BACKEND, "read a kv entry", exc) from exc
        return rows[0][0] if rows else None

    async def kv_put(self, namespace: str, key: str, value: dict[str, Any], ttl_s: float) -> None:
        text = codec.kv_row(namespace, key, value, ttl_s)
        now = self._clock()
        sweep = self._purges.due_after(1)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_KV_PUT, (namespace, key, text, now + ttl_s))
            if sweep:
                conn.execute(_KV_PURGE, (now,))

        await self._write("write a kv entry", run)

    async def put_and_append(self, puts: Sequence[KvPut], key: str, events: Sequence[StampedEvent]) -> None:
        await self._put_rows("write kv entries and append", puts, key, events)

    async def kv_delete(self, namespace: str, key: str) -> None:
        codec.check_kv_key(namespace, key)
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_KV_DELETE, (namespace, key))

        await self._write("delete a kv entry", run)

    async def purge_expired(self) -> int:
        now = self._clock()
        count: int = await self._write("purge expired kv entries", lambda conn: conn.execute(_KV_PURGE, (now,)).rowcount)
        return count

    async def close(self) -> None:
        """Finish the writes already queued, then release the files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._writer.stop()
        await asyncio.to_thread(self._writer.join)
        await asyncio.to_thread(self._readers.shutdown, True)
        self._reader_pool.close_all()
        self._inline.close()

    # -- plumbing --------------------------------------------------------------------------

    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise StoreClosed(BACKEND, operation)

    async def _put_rows(self, operation: str, puts: Sequence[KvPut], key: str,
                        events: Sequence[StampedEvent]) -> None:
        """``append`` and ``put_and_append``: every check first, then one transaction."""
        now = self._clock()
        kv_rows = []
        conditional = []  # (row, expect): checked and written first, before anything else
        for p in puts:
            row = (p.namespace, p.key, codec.kv_row(p.namespace, p.key, p.value, p.ttl_s, p.text), now + p.ttl_s)
            if p.expect is None:
                kv_rows.append(row)
            else:
                codec.check_expect(p.namespace, p.key, p.expect)
                conditional.append((row, p.expect))
        rows = codec.prepare(key, events)  # tuples in _INSERT_EVENT's column order
        if not kv_rows and not rows and not conditional:
            self._check_open(operation)
            return
        sweep = bool(kv_rows or conditional) and self._purges.due_after(len(kv_rows) + len(conditional))

        def run(conn: sqlite3.Connection) -> tuple[str, str] | None:
            """None once written; the (namespace, key) whose condition failed, with nothing written."""
            if conditional:
                several = len(conditional) > 1
                if several:
                    conn.execute("SAVEPOINT conditional_puts")
                for (namespace, key_, text, expires_at), expect in conditional:
                    if expect == ABSENT:
                        changed = conn.execute(_KV_PUT_IF_ABSENT, (namespace, key_, text, expires_at, now)).rowcount
                    else:
                        changed = conn.execute(_KV_PUT_IF_VALUE, (text, expires_at, namespace, key_, expect, now)).rowcount
                    if changed != 1:
                        if several:
                            conn.execute("ROLLBACK TO conditional_puts")
                            conn.execute("RELEASE conditional_puts")
                        return namespace, key_
                if several:
                    conn.execute("RELEASE conditional_puts")
            if kv_rows:
                conn.executemany(_KV_PUT, kv_rows)
            if rows:
                conn.executemany(_INSERT_EVENT, rows)
            if sweep:
                conn.execute(_KV_PURGE, (now,))
            return None

        conflict = await self._write(operation, run)
        if conflict is not None:
            raise WriteConflict(BACKEND, *conflict)

    async def _write(self, operation: str, run: WriteFn) -> Any:
        self._check_open(operation)
        return await self._writer.submit(operation, run)

    async def _read(self, operation: str, run: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open(operation)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._readers, self._reader_pool.run, run)
        except (sqlite3.Error, BrokenThreadPool) as exc:
            raise StoreUnavailable(BACKEND, operation, exc) from exc


class _WriteJob:
    """One write: what to run in the writer thread, and the awaiting caller's future."""

    __slots__ = ("operation", "run", "future", "loop")

    def __init__(self, operation: str, run: WriteFn, loop: asyncio.AbstractEventLoop) -> None:
        self.operation = operation
        self.run = run
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()


Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class _Writer:
    """The one thread that writes: drains its queue into one transaction per round.

    The callers of a committed batch are woken by one callback per event loop, not one
    per write: a batch of two hundred USSD requests costs the loop one wake-up.
    """

    def __init__(self, path: str, synchronous: Synchronous, max_batch: int) -> None:
        self._path = path
        self._synchronous = synchronous
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_WriteJob | None] = queue.SimpleQueue()
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, name="journey-sqlite-writer", daemon=True)
        self.batches = 0
        self.writes = 0

    def start(self) -> concurrent.futures.Future[None]:
        self._thread.start()
        return self._ready

    def submit(self, operation: str, run: WriteFn) -> asyncio.Future[Any]:
        """Queue a write; the future is settled in the caller's loop once its batch committed."""
        job = _WriteJob(operation, run, asyncio.get_running_loop())
        self._queue.put(job)
        return job.future

    def stop(self) -> None:
        self._queue.put(None)

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = _connect(self._path, self._synchronous)
            conn.executescript(SCHEMA)
        except BaseException as exc:  # handed to open(), which raises it in the caller
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        try:
            self._serve(conn)
        finally:
            conn.close()

    def _serve(self, conn: sqlite3.Connection) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self._max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            # A job whose caller was cancelled while it waited is dropped here, unwritten.
            outcomes: list[tuple[_WriteJob, Any, BaseException | None]] = []
            self._commit(conn, [job for job in batch if not job.future.cancelled()], outcomes)
            _settle_all(outcomes)
            if stopping:
                return

    def _commit(self, conn: sqlite3.Connection, jobs: list[_WriteJob],
                outcomes: list[tuple[_WriteJob, Any, BaseException | None]]) -> None:
        if not jobs:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = [job.run(conn) for job in jobs]
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if len(jobs) == 1:
                outcomes.append((jobs[0], None, StoreUnavailable(BACKEND, jobs[0].operation, exc)))
            else:
                for job in jobs:
                    self._commit(conn, [job], outcomes)
            return
        self.batches += 1
        self.writes += len(jobs)
        # Only after COMMIT returned (and so after the fsync) are the callers woken.
        outcomes.extend((job, result, None) for job, result in zip(jobs, results, strict=True))


def _settle_all(outcomes: list[tuple[_WriteJob, Any, BaseException | None]]) -> None:
    """Wake the callers: one callback per event loop, run in that loop's thread."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for job, result, error in outcomes:
        by_loop.setdefault(job.loop, []).append((job.future, result, error))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _settle(settled: list[Outcome]) -> None:
    for future, result, error in settled:
        if future.done():  # cancelled meanwhile: the write stands, nobody to tell
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


class _ReaderPool:
    """One read-only connection per reader thread, remembered so close() can close them."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []

    def open_for_thread(self) -> None:
        conn = _read_only(self._path, busy_timeout_ms=BUSY_TIMEOUT_MS, check_same_thread=False)
        self._local.conn = conn
        with self._lock:
            self._conns.append(conn)

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return fn(self._local.conn)

    def close_all(self) -> None:
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


def _read_only(path: str, *, busy_timeout_ms: int, check_same_thread: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread)
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    conn.execute("PRAGMA query_only = ON")
    return conn


def _connect(path: str, synchronous: Synchronous) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        conn.close()
        raise sqlite3.OperationalError(f"journal_mode is {mode!r}, WAL is required (is {path} on a network filesystem?)")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn
