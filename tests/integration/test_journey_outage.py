"""The journey store locked or its disk full under a live controller (real SQLite, real
Asterisk): the call goes on.

Another process holds SQLite's write lock (a stuck backup), or the file system under the
database has no space left (a real tmpfs filled to the last block: SQLite answers
``database or disk is full``). The caller still reaches the queue without waiting on the
store, ``/metrics`` and the log show the events waiting in the spool, and once the lock is
gone or space is freed every event of the call is stored, in the order it happened,
nothing dropped, and the context token the call handed its agent resolves to it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.settings import Settings
from tests.integration.test_callbacks import context

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


def wait_until_flushed(settings: Settings, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while metrics(settings)["ivr_journey_spool_waiting"] > 0:
        assert time.monotonic() < deadline, f"the spool was not flushed within {within_s:g} s of the store's return"
        time.sleep(0.5)


def assert_the_whole_call_stored_in_order(events: list[tuple[float, str]]) -> None:
    kinds = [kind for _at, kind in events]
    assert kinds[0] == "call_started" and "key_pressed" in kinds and "route_decided" in kinds, kinds
    assert [at for at, _kind in events] == sorted(at for at, _kind in events)  # stored in the order they happened


def assert_the_agents_token_shows_the_call(settings: Settings, token: str) -> None:
    """The token the call carried during the outage resolves now, to the journey of that call."""
    assert token, "a call routed during the outage still hands its agent a token"
    kinds = [e["type"] for e in context(settings, token)["journey"]]
    assert "key_pressed" in kinds and "route_decided" in kinds, kinds


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
    wait_until_flushed(asterisk)
    assert_the_whole_call_stored_in_order(stored(journey))
    assert_the_agents_token_shows_the_call(asterisk, record.variables.get("IVR_CONTEXT_TOKEN", ""))
    assert metrics(asterisk)["ivr_journey_spool_dropped_total"] == 0
    assert took < 30, "the call must not wait out the store"  # a guard against a hang, not a timing claim


def until_no_other_process_opens(path: Path, within_s: float = 10) -> None:
    deadline = time.monotonic() + within_s
    while True:
        holders = [pid for pid in os.listdir("/proc") if pid.isdigit() and int(pid) != os.getpid()
                   and any(_points_to(f"/proc/{pid}/fd/{fd}", path) for fd in _fds(pid))]
        if not holders:
            return
        assert time.monotonic() < deadline, f"processes {holders} still have {path} open"
        time.sleep(0.1)


def _fds(pid: str) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []


def _points_to(link: str, path: Path) -> bool:
    try:
        return os.readlink(link) == str(path)
    except OSError:
        return False


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of its own: a real file system that a test can fill to the last block."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "ivr-test-disk", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the file system refuses another byte (ENOSPC); returns the file."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        chunk = b"\0" * 65536
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        with contextlib.suppress(OSError):  # the last partial block
            while True:
                out.write(b"\0" * 512)
    return filler


def test_a_full_disk_under_the_journey_store_costs_the_caller_nothing_and_loses_no_event(
        asterisk, start_controller, place_call, small_disk):
    journey = small_disk / "journey.sqlite"
    serving = start_controller(IVR_JOURNEY_SQLITE_PATH=str(journey))
    filler = fill(small_disk)
    try:
        record = place_call(dnis="100", keys="0", caller=CALLER, delay_s=3, hold_s=8)
        during = metrics(asterisk)
        assert stored(journey) == []  # no room for a single page
    finally:
        filler.unlink()

    assert record.queue is not None and record.queue.name == "support", record.errors
    assert during["ivr_journey_spool_waiting"] > 0
    assert serving.log_path is not None and "database or disk is full" in serving.log_path.read_text(), \
        "the log says why events are spooled"
    wait_until_flushed(asterisk)
    assert_the_whole_call_stored_in_order(stored(journey))
    assert_the_agents_token_shows_the_call(asterisk, record.variables.get("IVR_CONTEXT_TOKEN", ""))
    assert metrics(asterisk)["ivr_journey_spool_dropped_total"] == 0


def test_events_a_controller_killed_during_an_outage_held_are_stored_by_the_next_controller(
        asterisk, start_controller, place_call, tmp_path):
    journey = tmp_path / "journey.sqlite"
    env = {"IVR_JOURNEY_SQLITE_PATH": str(journey), "IVR_JOURNEY_SPOOL_DIR": str(tmp_path / "spool")}
    first = start_controller(**env)
    lock = sqlite3.connect(journey, isolation_level=None, timeout=30)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        record = place_call(dnis="100", keys="0", caller=CALLER, delay_s=3, hold_s=8)
        assert metrics(asterisk)["ivr_journey_spool_waiting"] > 0
        first.kill()  # kill -9 with the call's events in its spool
        until_no_other_process_opens(journey)  # its writer process dies with it (PR_SET_PDEATHSIG)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert record.queue is not None and record.queue.name == "support", record.errors
    assert stored(journey) == []

    start_controller(**env)
    wait_until_flushed(asterisk)

    assert_the_whole_call_stored_in_order(stored(journey))
    assert_the_agents_token_shows_the_call(asterisk, record.variables.get("IVR_CONTEXT_TOKEN", ""))
    assert list((tmp_path / "spool").iterdir()) == []  # every write done: no spool file left
