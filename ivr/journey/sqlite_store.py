"""The default journey store: one SQLite file, durable per append, group-committed.

Durability. WAL journal with ``synchronous=FULL``: COMMIT returns only after the WAL is
fsynced, so an append that returned survives a kill -9 of the process and a power cut.
``synchronous="NORMAL"`` is offered for disposable deployments: in WAL mode it still
survives kill -9 (the WAL write is in the kernel's page cache before COMMIT returns) but
may lose the last commits on a power cut or kernel crash.

Throughput. Every write goes through one connection, owned by a writer process of its own
(:mod:`ivr.journey.sqlite_writer_process`: as a thread, it took turns with the event loop
for the GIL on every row). While it commits one batch, the writes that arrive wait; the
moment it is done they go as the next batch, one transaction, one commit, so when fifty
calls append at the same moment one fsync serves them all (group commit). Each caller's
``await`` returns only after the commit its write was part of. If a batch fails, its
writes are retried one by one, so one bad write cannot fail its neighbours. A write whose
caller was cancelled before its batch left is not written. If the writer process dies,
the writes it held fail with StoreUnavailable (stored or not: SQLite has the answer) and
a new writer process takes the next ones.

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
import contextlib
import itertools
import json
import math
import os
import pickle
import sqlite3
import sys
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
from ivr.journey.events import AGENT_CONNECTED
from ivr.journey.ports import Clock, KvPut, StampedEvent, check_range
from ivr.journey.sqlite_writer_process import HEADER, frame

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
_KV_SCAN = "SELECT key, value FROM journey_kv WHERE namespace = ? AND expires_at > ? ORDER BY key LIMIT ?"
_KV_PURGE = "DELETE FROM journey_kv WHERE expires_at <= ?"

Synchronous = Literal["FULL", "NORMAL"]
#: What the writer process runs, by name (it imports nothing of ivr: it is sent these).
_WRITER_SQL = {"insert_event": _INSERT_EVENT, "put": _KV_PUT, "put_if_absent": _KV_PUT_IF_ABSENT,
               "put_if_value": _KV_PUT_IF_VALUE, "delete": _KV_DELETE, "purge": _KV_PURGE}
WRITER_EXIT_TIMEOUT_S = 30.0  # for the writer process to commit what it holds and exit


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
        await writer.start()
        try:
            inline = _read_only(str(path), busy_timeout_ms=0)
            # Every USSD request reads its session record here, each a different key: a
            # page cache above SQLite's default 2 MB keeps the kv table's inner pages, and
            # a read then costs about 10 µs instead of 13-16 (bench/RESULTS.md).
            inline.execute(f"PRAGMA cache_size = -{INLINE_CACHE_KIB}")
        except sqlite3.Error as exc:
            await writer.stop()
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
        await self._write("write a kv entry", "kv_put", ((namespace, key, text, now + ttl_s), now, sweep))

    async def put_and_append(self, puts: Sequence[KvPut], key: str, events: Sequence[StampedEvent]) -> None:
        await self._put_rows("write kv entries and append", puts, key, events)

    async def kv_delete(self, namespace: str, key: str) -> None:
        codec.check_kv_key(namespace, key)
        await self._write("delete a kv entry", "kv_delete", (namespace, key))

    async def kv_scan(self, namespace: str, *, limit: int = 10_000) -> list[tuple[str, dict[str, Any]]]:
        now = self._clock()
        rows = await self._read("list kv entries",
                                lambda c: c.execute(_KV_SCAN, (namespace, now, limit)).fetchall())
        return [(row[0], dict(json.loads(row[1]))) for row in rows]

    async def purge_expired(self) -> int:
        count: int = await self._write("purge expired kv entries", "purge", (self._clock(),))
        return count

    async def close(self) -> None:
        """Finish the writes already queued, then release the files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._writer.stop()
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
            row = (p.namespace, p.key, codec.put_text(p), now + p.ttl_s)
            if p.expect is None:
                kv_rows.append(row)
            else:
                conditional.append((row, p.expect))
        rows = codec.prepare(key, events)  # tuples in _INSERT_EVENT's column order
        if not kv_rows and not rows and not conditional:
            self._check_open(operation)
            return
        sweep = bool(kv_rows or conditional) and self._purges.due_after(len(kv_rows) + len(conditional))
        # The writer process returns None once written, or the (namespace, key) whose
        # condition failed, with nothing of this write stored.
        conflict = await self._write(operation, "rows", (conditional, kv_rows, rows, now, sweep))
        if conflict is not None:
            raise WriteConflict(BACKEND, *conflict)

    async def _write(self, operation: str, op: str, args: tuple[Any, ...]) -> Any:
        self._check_open(operation)
        return await self._writer.submit(operation, op, args)

    async def _read(self, operation: str, run: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open(operation)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._readers, self._reader_pool.run, run)
        except (sqlite3.Error, BrokenThreadPool) as exc:
            raise StoreUnavailable(BACKEND, operation, exc) from exc


class _Job:
    """One write waiting for its batch: what to run in the writer process, and who waits."""

    __slots__ = ("operation", "op", "args", "future")

    def __init__(self, operation: str, op: str, args: tuple[Any, ...], future: asyncio.Future[Any]) -> None:
        self.operation = operation
        self.op = op
        self.args = args
        self.future = future


class _ChildFailed(Exception):
    """The writer process's account of a failed write (the exception stays in that process)."""


class _Writer:
    """The writer process (:mod:`ivr.journey.sqlite_writer_process`) and the batches sent to it.

    One batch is in the process at a time. Writes submitted meanwhile wait here and go as
    the next batch the moment the last one is committed: group commit, and a write whose
    caller was cancelled before its batch left is dropped, never written. A writer process
    that dies fails the writes it held (they may or may not be stored) and is started again
    for the next ones. Bound to the event loop the store was opened on.
    """

    def __init__(self, path: str, synchronous: Synchronous, max_batch: int) -> None:
        self._settings = {"path": path, "synchronous": synchronous, "busy_timeout_ms": BUSY_TIMEOUT_MS,
                          "schema": SCHEMA, "sql": _WRITER_SQL}
        self._max_batch = max_batch
        self._process: asyncio.subprocess.Process | None = None
        self._replies: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None
        self._waiting: list[_Job] = []
        self._in_flight: dict[int, _Job] = {}
        self._ids = itertools.count()
        self._flush_scheduled = False
        self._drained: asyncio.Event | None = None
        self.batches = 0
        self.writes = 0

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        """Start the process and wait until it opened the database; raises StoreUnavailable."""
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-I", str(Path(__file__).with_name("sqlite_writer_process.py")), str(os.getpid()),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        except OSError as exc:  # no processes left, no interpreter: the store cannot write
            raise StoreUnavailable(BACKEND, f"start the writer for {self._settings['path']}", exc) from exc
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(frame(self._settings))
        try:
            status, detail = await _read_frame(process.stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            await _reap(process)
            raise StoreUnavailable(BACKEND, f"start the writer for {self._settings['path']}", exc) from exc
        if status != "ready":
            await _reap(process)
            raise StoreUnavailable(BACKEND, f"open {self._settings['path']}", _ChildFailed(detail))
        self._process = process
        self._replies = asyncio.ensure_future(self._read_replies(process))

    def submit(self, operation: str, op: str, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue a write; its future is settled once the batch it went in is committed."""
        loop = asyncio.get_running_loop()
        job = _Job(operation, op, args, loop.create_future())
        self._waiting.append(job)
        if not self._in_flight and not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return job.future

    async def stop(self) -> None:
        """Send what is queued, wait for it to be committed, then end the process."""
        if self._waiting or self._in_flight:
            self._drained = asyncio.Event()
            self._flush()
            await self._drained.wait()
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        process = self._process
        if process is not None:
            assert process.stdin is not None
            process.stdin.close()
            await _reap(process)
        if self._replies is not None:
            await asyncio.gather(self._replies, return_exceptions=True)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._in_flight:
            return
        self._waiting = [job for job in self._waiting if not job.future.cancelled()]
        if not self._waiting:
            self._note_drained()
            return
        process = self._process
        if process is None or process.returncode is not None or process.stdin is None \
                or process.stdin.is_closing():
            if self._starting is None:
                self._starting = asyncio.ensure_future(self._restart())
            return
        batch, self._waiting = self._waiting[:self._max_batch], self._waiting[self._max_batch:]
        message = []
        for job in batch:
            job_id = next(self._ids)
            self._in_flight[job_id] = job
            message.append((job_id, job.op, job.args))
        process.stdin.write(frame(message))

    async def _restart(self) -> None:
        """A new writer process for the writes that are waiting (the last one died)."""
        try:
            await self.start()
        except StoreUnavailable as exc:
            failed, self._waiting = self._waiting, []
            for job in failed:
                _fail(job, exc)
            self._note_drained()
        finally:
            self._starting = None
        if self._waiting:
            self._flush()

    async def _read_replies(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while True:
                results = await _read_frame(process.stdout)
                committed = sum(1 for _, ok, _ in results if ok)
                if committed:  # counted as the thread writer counted: what a COMMIT stored
                    self.batches += 1
                    self.writes += committed
                for job_id, ok, value in results:
                    job = self._in_flight.pop(job_id)
                    if job.future.done():  # cancelled while its batch ran: written, nobody to tell
                        continue
                    if ok:
                        job.future.set_result(value)
                    else:
                        job.future.set_exception(StoreUnavailable(BACKEND, job.operation, _ChildFailed(value)))
                self._flush()
        except Exception as exc:  # the process ended, or said something we cannot read
            if not isinstance(exc, EOFError) and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()  # it is not making sense: start afresh
            code = await _reap(process)
            if self._in_flight:
                lost = StoreUnavailable(BACKEND, "write", _ChildFailed(
                    f"the writer process ended (exit status {code}) with {len(self._in_flight)} writes "
                    f"unconfirmed: they may or may not be stored ({type(exc).__name__})"))
                for job in self._in_flight.values():
                    _fail(job, lost)
                self._in_flight.clear()
            if self._process is process:
                self._process = None
            if self._waiting:
                self._flush()  # a new process takes them (close() waits for them too)
            self._note_drained()

    def _note_drained(self) -> None:
        if self._drained is not None and not self._waiting and not self._in_flight:
            self._drained.set()


def _fail(job: _Job, error: BaseException) -> None:
    if not job.future.done():
        job.future.set_exception(error)


async def _read_frame(stream: asyncio.StreamReader) -> Any:
    try:
        head = await stream.readexactly(HEADER.size)
        return pickle.loads(await stream.readexactly(HEADER.unpack(head)[0]))
    except asyncio.IncompleteReadError:
        raise EOFError("the writer process closed its output") from None


async def _reap(process: asyncio.subprocess.Process) -> int | None:
    """Wait for the process to end (killing it if it will not); its exit status."""
    try:
        async with asyncio.timeout(WRITER_EXIT_TIMEOUT_S):
            return await process.wait()
    except TimeoutError:
        process.kill()
        return await process.wait()


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

