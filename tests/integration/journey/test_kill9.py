"""A write the store acknowledged survives a kill -9 of the process that made it.

A child process appends in a loop (alone, and with eight concurrent appenders so SQLite's
group commit is exercised) and prints each sequence number once its append returned. The
test kills it with SIGKILL mid-stream, opens the store afresh and checks that every
printed number is stored. Events stored but never acknowledged are allowed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivr.journey.codec import MAX_LIMIT
from ivr.journey.pg_store import PgJourneyStore
from ivr.journey.ports import JourneyStore
from ivr.journey.sqlite_store import SqliteJourneyStore

from .conftest import REPO

ACKS_BEFORE_KILL = 400
STARTUP_TIMEOUT_S = 30.0


def run_and_kill(backend: str, target: str, workers: int) -> set[int]:
    """Start the appender, SIGKILL it after ACKS_BEFORE_KILL acks; return every ack it printed."""
    child = subprocess.Popen([sys.executable, "-m", "tests.integration.journey.appender", backend, target, str(workers)],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    acked: set[int] = set()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while len(acked) < ACKS_BEFORE_KILL:
            line = child.stdout.readline()
            if not line or time.monotonic() > deadline:
                child.kill()
                _, err = child.communicate(timeout=10)
                pytest.fail(f"appender stopped or stalled after {len(acked)} acks (exit {child.returncode}): "
                            f"{err.decode()[-2000:]}")
            if line.strip().isdigit():
                acked.add(int(line))
        assert child.poll() is None, "the appender must still be appending when it is killed"
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
    rest, _ = child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL
    # Complete lines only: each was one write(2) made after its append returned.
    acked.update(int(line) for line in rest.split(b"\n") if line.strip().isdigit())
    return acked


async def stored_sequence_numbers(store: JourneyStore) -> set[int]:
    try:
        events = await store.recent("kill9", limit=MAX_LIMIT)
    finally:
        await store.close()
    assert len(events) < MAX_LIMIT, "raise MAX_LIMIT or lower ACKS_BEFORE_KILL: the check would be cut short"
    return {int(e.data["seq"]) for e in events}


@pytest.mark.parametrize("workers", [1, 8])
async def test_every_acknowledged_sqlite_append_survives_kill9(tmp_path: Path, workers: int) -> None:
    path = tmp_path / "journey.db"

    acked = run_and_kill("sqlite", str(path), workers)

    stored = await stored_sequence_numbers(await SqliteJourneyStore.open(path))
    assert acked - stored == set()


@pytest.mark.parametrize("workers", [1, 8])
async def test_every_acknowledged_postgresql_append_survives_kill9(pg_dsn: str, workers: int) -> None:
    acked = run_and_kill("postgresql", pg_dsn, workers)

    stored = await stored_sequence_numbers(await PgJourneyStore.open(pg_dsn))
    assert acked - stored == set()
