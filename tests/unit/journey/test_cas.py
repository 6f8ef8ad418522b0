"""change_kv: one kv entry changed by compare-and-set, as several processes share it."""

from __future__ import annotations

from collections.abc import Sequence

from ivr.journey.cas import change_kv
from ivr.journey.errors import WriteConflict
from ivr.journey.memory import MemoryJourney
from ivr.journey.ports import KvPut, StampedEvent


def add_one(stored):
    count = (stored or {}).get("n", 0) + 1
    return count, {"n": count}


async def test_a_change_reads_what_was_stored_and_writes_the_new_value():
    store = MemoryJourney()
    await change_kv(store, "t", "k", add_one, 60)

    assert await change_kv(store, "t", "k", add_one, 60) == (True, 2)
    assert await store.kv_get("t", "k") == {"n": 2}


async def test_a_change_that_returns_no_value_writes_nothing():
    store = MemoryJourney()

    assert await change_kv(store, "t", "k", lambda _stored: ("seen", None), 60) == (True, "seen")
    assert await store.kv_get("t", "k") is None


async def test_an_entry_that_is_not_a_json_object_reads_as_none():
    class Garbled(MemoryJourney):
        async def kv_get_text(self, namespace: str, key: str) -> str | None:
            return "[1, 2]"

    assert (await change_kv(Garbled(), "t", "k", lambda stored: (stored, None), 60)) == (True, None)


class AlwaysRaced(MemoryJourney):
    async def put_and_append(self, puts: Sequence[KvPut], key: str, events: Sequence[StampedEvent]) -> None:
        raise WriteConflict("memory", "t", "k")


async def test_a_change_that_loses_every_race_gives_up_after_its_attempts():
    calls = []

    def counted(stored):
        calls.append(stored)
        return 1, {"n": 1}

    assert await change_kv(AlwaysRaced(), "t", "k", counted, 60, attempts=3) == (False, None)
    assert len(calls) == 3
