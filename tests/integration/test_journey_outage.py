"""The journey store locked under a live controller (real SQLite, real Asterisk): the call goes on.

Another process holds SQLite's write lock (what a stuck backup or a full disk looks like from
here). The caller still reaches the queue without waiting on the store, ``/metrics`` shows
the events waiting in the spool, and once the lock is gone every event of the call is
stored, in the order it happened, nothing dropped.
"""

from __future__ import annotations

import re
import sqlite3
import time
import urllib.request
from pathlib import Path

import pytest

from ivr.settings import Settings

pytestmark = pytest.mark.asterisk
CALLER = "79990007788"


def metrics(settings: Settings) -> dict[str, float]:
    with urllib.request.urlopen(f"{settings.http.local_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(ivr_journey_\w+) (\S+)$", text, re.MULTILINE)}


def stored(path: Path) -> list[tuple[float, str]]:
    """The caller's events in the order they were stored (a plain reader: WAL lets it read under the lock)."""
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(reader.execute("SELECT at, type FROM journey_event WHERE key = ? ORDER BY seq", (f"+{CALLER}",)))
    finally:
        reader.close()


def test_a_locked_journey_store_costs_the_caller_nothing_and_loses_no_event(asterisk, controller, place_call):
    journey = asterisk.path(asterisk.journey.sqlite_path)
    lock = sqlite3.connect(journey, isolation_level=None, timeout=30)
    lock.execute("BEGIN EXCLUSIVE")  # held by another process's transaction, as a stuck writer would
    try:
        started = time.monotonic()
        record = place_call(dnis="100", keys="0", caller=CALLER, delay_s=3, hold_s=8)
        took = time.monotonic() - started
        during = metrics(asterisk)
        assert stored(journey) == []  # nothing could be written
    finally:
        lock.execute("ROLLBACK")
        lock.close()

    assert record.queue is not None and record.queue.name == "support", record.errors
    assert during["ivr_journey_spool_waiting"] > 0
    deadline = time.monotonic() + 30
    while metrics(asterisk)["ivr_journey_spool_waiting"] > 0:
        assert time.monotonic() < deadline, "the spool was not flushed within 30 s of the lock's end"
        time.sleep(0.5)
    events = stored(journey)
    kinds = [kind for _at, kind in events]
    assert kinds[0] == "call_started" and "key_pressed" in kinds and "route_decided" in kinds
    assert [at for at, _kind in events] == sorted(at for at, _kind in events)  # stored in the order they happened
    assert metrics(asterisk)["ivr_journey_spool_dropped_total"] == 0
    assert took < 30, "the call must not wait out the store"  # a guard against a hang, not a timing claim
