"""The SQLite journey store's writer, as a process of its own: ``python sqlite_writer_process.py``.

Why a process. In a thread, the writer and the event loop share the GIL: each SQLite step
of the writer releases it, the busy event loop takes it, and the writer waits for it back
once per row. Batches then take long, requests wait for their commit, and the gateway
stalls while its core is far from busy. Here the writer has its own interpreter, so its
work and its fsyncs run beside the event loop, not in turns with it (``bench/RESULTS.md``).

Protocol, on stdin and stdout, every message a 4-byte little-endian length and a pickle:

- in: the settings (path, synchronous, busy timeout, schema, the statements by name);
  out: ``("ready", None)`` or ``("failed", "the error")``;
- in: a batch, ``[(job_id, op, args), ...]``; out: ``[(job_id, ok, value), ...]`` once
  the batch is committed (``ok`` False: ``value`` is the error's text). The whole batch
  is one transaction; if it fails, each job is run again alone, so one bad write cannot
  fail its neighbours. ``op`` is one of :data:`OPS`.
- end of stdin: the parent closed the store or died; the writer exits.

A parent killed outright (``kill -9``, the OOM killer) takes the writer with it (Linux
``PR_SET_PDEATHSIG``): a batch still waiting on a locked database is rolled back, never
committed behind the parent's back. Its events are in the parent's spool file, and the
next controller stores them once (``ivr/journey/spool_file.py``); committed here as well,
they would be stored twice.

Only the standard library and nothing of ``ivr``: the parent runs this file by its path,
under its own interpreter, and sends everything else.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import struct
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

HEADER = struct.Struct("<I")


def read_message(stream: BinaryIO) -> Any:
    """The next message, or None at the end of the stream."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)


def frame(message: Any) -> bytes:
    """``message`` as sent either way: its pickle's length, then the pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def write_message(stream: BinaryIO, message: Any) -> None:
    stream.write(frame(message))
    stream.flush()


class Writer:
    """Runs batches on one connection; ``sql`` holds the store's statements by name."""

    def __init__(self, conn: sqlite3.Connection, sql: dict[str, str]) -> None:
        self.conn = conn
        self.sql = sql
        self.ops: dict[str, Callable[..., Any]] = {
            "rows": self.rows, "kv_put": self.kv_put, "kv_delete": self.kv_delete, "purge": self.purge}

    def batch(self, jobs: list[tuple[int, str, tuple[Any, ...]]]) -> list[tuple[int, bool, Any]]:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = [(job_id, True, self.ops[op](*args)) for job_id, op, args in jobs]
            conn.execute("COMMIT")
            return results
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if len(jobs) == 1:
                return [(jobs[0][0], False, f"{type(exc).__name__}: {exc}")]
            return [result for job in jobs for result in self.batch([job])]

    def rows(self, conditional: list[tuple[tuple[str, str, str, float], str]], kv_rows: list[tuple[Any, ...]],
             event_rows: list[tuple[Any, ...]], now: float, sweep: bool) -> tuple[str, str] | None:
        """A put-and-append: the conditional puts first (none written if one fails: the
        failed one's (namespace, key) is the result), then the other puts and the events."""
        conn, sql = self.conn, self.sql
        if conditional:
            several = len(conditional) > 1
            if several:
                conn.execute("SAVEPOINT conditional_puts")
            for (namespace, key, text, expires_at), expect in conditional:
                if expect == "":  # ABSENT: no live entry
                    changed = conn.execute(sql["put_if_absent"], (namespace, key, text, expires_at, now)).rowcount
                else:
                    changed = conn.execute(sql["put_if_value"], (text, expires_at, namespace, key, expect, now)).rowcount
                if changed != 1:
                    if several:
                        conn.execute("ROLLBACK TO conditional_puts")
                        conn.execute("RELEASE conditional_puts")
                    return namespace, key
            if several:
                conn.execute("RELEASE conditional_puts")
        if kv_rows:
            conn.executemany(sql["put"], kv_rows)
        if event_rows:
            conn.executemany(sql["insert_event"], event_rows)
        if sweep:
            conn.execute(sql["purge"], (now,))
        return None

    def kv_put(self, row: tuple[Any, ...], now: float, sweep: bool) -> None:
        self.conn.execute(self.sql["put"], row)
        if sweep:
            self.conn.execute(self.sql["purge"], (now,))

    def kv_delete(self, namespace: str, key: str) -> None:
        self.conn.execute(self.sql["delete"], (namespace, key))

    def purge(self, now: float) -> int:
        return int(self.conn.execute(self.sql["purge"], (now,)).rowcount)


def connect(settings: dict[str, Any]) -> sqlite3.Connection:
    conn = sqlite3.connect(settings["path"], isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(settings['busy_timeout_ms'])}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        conn.close()
        raise sqlite3.OperationalError(
            f"journal_mode is {mode!r}, WAL is required (is {settings['path']} on a network filesystem?)")
    conn.execute(f"PRAGMA synchronous = {settings['synchronous']}")
    conn.executescript(settings["schema"])
    return conn


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent dies (Linux); exit at once if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above took effect
        sys.exit(0)


def main() -> int:
    die_with_parent(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else os.getppid())
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    settings = read_message(stdin)
    if settings is None:
        return 0
    try:
        conn = connect(settings)
    except Exception as exc:  # told to the parent, which raises it where the store was opened
        write_message(stdout, ("failed", f"{type(exc).__name__}: {exc}"))
        return 1
    write_message(stdout, ("ready", None))
    writer = Writer(conn, settings["sql"])
    try:
        while (jobs := read_message(stdin)) is not None:
            write_message(stdout, writer.batch(jobs))
    except BrokenPipeError:  # the parent is gone: what it sent is committed, nobody to tell
        return 0
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
