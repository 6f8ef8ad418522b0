"""What only the SQLite backend promises: WAL, group commit, and a writer that isolates failures."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ivr.journey.errors import RequestInvalid, StoreUnavailable
from ivr.journey.ports import KvPut, StampedEvent
from ivr.journey.sqlite_store import SqliteJourneyStore


def ev(seq: int) -> StampedEvent:
    return StampedEvent(1_700_000_000.0 + seq, "voice", f"call-{seq}", "node_entered", {"seq": seq})


async def test_the_database_file_is_in_wal_mode(tmp_path: Path) -> None:
    store = await SqliteJourneyStore.open(tmp_path / "j.db")
    await store.close()

    assert sqlite3.connect(tmp_path / "j.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_concurrent_appends_share_commits(tmp_path: Path) -> None:
    store = await SqliteJourneyStore.open(tmp_path / "j.db")
    try:
        await asyncio.gather(*(store.append("k", [ev(i)]) for i in range(200)))
        commits, writes = store.commits
        assert len(await store.recent("k", limit=1000)) == 200
    finally:
        await store.close()
    assert writes == 200
    assert commits < 200


def poison(path: Path, key: str) -> None:
    """Make SQLite refuse every journey event under ``key``: a write that fails in the database."""
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TRIGGER poison BEFORE INSERT ON journey_event WHEN NEW.key = '{key}' "
                     "BEGIN SELECT RAISE(ABORT, 'poisoned'); END")


async def test_a_failing_write_does_not_fail_the_writes_batched_with_it(tmp_path: Path) -> None:
    store = await SqliteJourneyStore.open(tmp_path / "j.db")
    poison(tmp_path / "j.db", "bad")
    try:
        results = await asyncio.gather(store.append("k", [ev(1)]), store.append("bad", [ev(9)]),
                                       store.append("k", [ev(2)]), return_exceptions=True)
        assert [type(r).__name__ for r in results] == ["NoneType", "StoreUnavailable", "NoneType"]
        assert "poisoned" in str(results[1])
        assert len(await store.recent("k")) == 2
    finally:
        await store.close()


@asynccontextmanager
async def batch_held(path: Path) -> AsyncIterator[tuple[SqliteJourneyStore, sqlite3.Connection, asyncio.Future[None]]]:
    """A store whose writer process is inside a batch (appending seq 1) that waits for the
    write lock another connection holds; ``other.execute("COMMIT")`` lets it go on."""
    store = await SqliteJourneyStore.open(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        first = asyncio.ensure_future(store.append("k", [ev(1)]))
        await asyncio.sleep(0.05)
        yield store, other, first
    finally:
        if other.in_transaction:
            other.execute("COMMIT")
        other.close()
        await store.close()


async def test_an_append_cancelled_before_its_batch_left_is_not_stored(tmp_path: Path) -> None:
    async with batch_held(tmp_path / "j.db") as (store, other, first):
        waiting = asyncio.ensure_future(store.append("k", [ev(2)]))  # queued behind that batch
        await asyncio.sleep(0.05)
        waiting.cancel()
        other.execute("COMMIT")
        await first
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert [e.data["seq"] for e in await store.recent("k")] == [1]


async def test_a_writer_process_that_dies_fails_its_writes_and_the_next_ones_are_stored(tmp_path: Path) -> None:
    async with batch_held(tmp_path / "j.db") as (store, other, first):
        pid = store._writer.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(StoreUnavailable, match="may or may not be stored"):
            await first
        other.execute("COMMIT")

        await store.append("k", [ev(2)])

        assert store._writer.pid not in (None, pid)
        assert [e.data["seq"] for e in await store.recent("k")] == [2]


async def test_close_finishes_the_appends_already_queued(tmp_path: Path) -> None:
    store = await SqliteJourneyStore.open(tmp_path / "j.db")
    pending = [asyncio.ensure_future(store.append("k", [ev(i)])) for i in range(50)]
    await asyncio.sleep(0)
    await store.close()
    await asyncio.gather(*pending)

    reopened = await SqliteJourneyStore.open(tmp_path / "j.db")
    try:
        assert len(await reopened.recent("k")) == 50
    finally:
        await reopened.close()


async def test_a_path_that_cannot_hold_a_database_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="sqlite"):
        await SqliteJourneyStore.open(tmp_path)


async def test_an_unknown_synchronous_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RequestInvalid, match="synchronous"):
        await SqliteJourneyStore.open(tmp_path / "j.db", synchronous="OFF")  # type: ignore[arg-type]


async def test_a_kv_read_does_not_wait_for_another_process_writing(tmp_path: Path) -> None:
    # The kv read runs on the event loop's own connection: it must never block on a writer
    # (another gateway process holding the write lock mid-transaction).
    store = await SqliteJourneyStore.open(tmp_path / "j.db")
    other = sqlite3.connect(tmp_path / "j.db", isolation_level=None)
    try:
        await store.kv_put("ussd", "s1", {"step": 1}, 60)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE journey_kv SET value = '{\"step\": 2}' WHERE key = 's1'")

        assert await store.kv_get("ussd", "s1") == {"step": 1}  # the committed value
        other.execute("COMMIT")
        assert await store.kv_get("ussd", "s1") == {"step": 2}
    finally:
        other.close()
        await store.close()


async def test_kv_puts_and_an_append_share_one_commit(tmp_path: Path) -> None:
    store = await SqliteJourneyStore.open(tmp_path / "j.db")
    try:
        await store.put_and_append([KvPut("ussd", "s1", {"step": 1}, 60)], "k", [ev(1), ev(2)])
        assert store.commits == (1, 1)
    finally:
        await store.close()
