"""The journey spool on disk: a controller killed during a store outage leaves its writes to the next."""

from __future__ import annotations

import fcntl
from pathlib import Path

from ivr.backoff import Backoff
from ivr.journey.memory import MemoryJourney
from ivr.journey.ports import StampedEvent
from ivr.journey.spool import SpooledJourney
from ivr.journey.spool_file import SpoolFile, pending_records
from tests.unit.journey.test_spool import FlakyStore, event, nodes


def spool(store: MemoryJourney, directory: Path, pid: int) -> SpooledJourney:
    return SpooledJourney(store, backoff=Backoff(initial_s=0.01, maximum_s=0.01), file=SpoolFile(directory, pid=pid))


def killed(journey: SpooledJourney) -> None:
    """What kill -9 leaves: the file as written, its lock released by the kernel, nothing flushed."""
    assert journey.file is not None and journey.file._out is not None
    if journey._flusher is not None:
        journey._flusher.cancel()
    journey.file._out.close()


async def test_events_a_killed_controller_spooled_are_stored_in_order_by_the_next_one(tmp_path):
    store = FlakyStore()
    store.down = True
    first = spool(store, tmp_path, pid=1)
    await first.append("k", [event(1)])
    await first.append("k", [event(2), event(3)])
    killed(first)
    store.down = False

    second = spool(store, tmp_path, pid=2)
    assert second.recover() == 2
    await second.drained()

    assert nodes(store) == ["n1", "n2", "n3"]
    assert list(tmp_path.iterdir()) == []  # every write done: no file left


async def test_a_context_token_claim_a_killed_controller_spooled_is_stored_by_the_next_one(tmp_path):
    store = FlakyStore()
    store.down = True
    first = spool(store, tmp_path, pid=1)
    await first.kv_put_or_spool("token", "t1", {"interaction": "call-1"}, ttl_s=600)
    killed(first)
    store.down = False

    second = spool(store, tmp_path, pid=2)
    second.recover()
    await second.drained()

    assert await store.kv_get("token", "t1") == {"interaction": "call-1"}


async def test_writes_the_store_took_before_the_kill_are_not_stored_again(tmp_path):
    store = FlakyStore()
    store.down = True
    first = spool(store, tmp_path, pid=1)
    await first.append("k", [event(1)])
    store.down = False
    await first.drained()  # n1 stored: its file is gone
    store.down = True
    await first.append("k", [event(2)])
    killed(first)
    store.down = False

    second = spool(store, tmp_path, pid=2)
    second.recover()
    await second.drained()

    assert nodes(store) == ["n1", "n2"]


async def test_the_file_of_a_running_controller_is_not_taken_over(tmp_path):
    store = FlakyStore()
    store.down = True
    running = spool(store, tmp_path, pid=1)
    await running.append("k", [event(1)])

    other = spool(store, tmp_path, pid=2)
    assert other.recover() == 0
    store.down = False
    await running.drained()

    assert nodes(store) == ["n1"]


async def test_a_spool_file_the_disk_refuses_leaves_the_writes_in_memory(tmp_path, caplog):
    store = FlakyStore()
    store.down = True
    not_a_directory = tmp_path / "spool"
    not_a_directory.write_text("")
    journey = spool(store, not_a_directory, pid=1)

    await journey.append("k", [event(1)])
    store.down = False
    await journey.drained()

    assert nodes(store) == ["n1"]
    assert "kept in memory only" in caplog.text


async def test_close_with_writes_still_waiting_keeps_the_file_for_the_next_start(tmp_path, monkeypatch):
    monkeypatch.setattr("ivr.journey.spool.FLUSH_ON_CLOSE_S", 0.05)
    store = FlakyStore()
    store.down = True
    first = spool(store, tmp_path, pid=1)
    await first.append("k", [event(1)])
    await first.close()

    restarted = FlakyStore()
    second = spool(restarted, tmp_path, pid=2)
    second.recover()
    await second.drained()

    assert nodes(restarted) == ["n1"]


def test_a_torn_last_line_and_done_writes_are_not_pending():
    text = '{"n":1,"key":"a"}\n{"n":2,"key":"b"}\n{"done":1}\n{"n":3,"ke'

    assert pending_records(text) == [{"key": "b"}]


def test_a_spool_file_is_locked_by_its_controller_while_it_writes(tmp_path):
    file = SpoolFile(tmp_path, pid=7)
    file.add({"key": "k", "events": []})

    with file.path.open() as other:
        try:
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = False
        except OSError:
            locked = True
    assert locked
    file.close()


def test_events_survive_the_file_as_they_were():
    from ivr.journey.spool import _Write

    original = _Write("k", [StampedEvent(1.5, "voice", "call-1", "key_pressed", {"key": "2", "n": [1, 2]})])

    assert _Write.from_record(original.record(), 4).events == original.events
