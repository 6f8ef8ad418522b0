"""The journey spool: a store outage costs no call and no event, and the order is kept."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ivr.backoff import Backoff
from ivr.journey.errors import RequestInvalid, StoreUnavailable
from ivr.journey.memory import MemoryJourney
from ivr.journey.ports import StampedEvent
from ivr.journey.spool import SpooledJourney


class FlakyStore(MemoryJourney):
    """A memory store that is down while ``down`` is set and refuses keys in ``refused``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.refused: set[str] = set()

    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        if self.down:
            raise StoreUnavailable("test", "append", ConnectionError("the database restarts"))
        if key in self.refused:
            raise RequestInvalid("events", "refused for this test")
        await super().append(key, events)

    async def kv_put(self, namespace: str, key: str, value: dict, ttl_s: float) -> None:
        if self.down:
            raise StoreUnavailable("test", "kv put", ConnectionError("the database restarts"))
        await super().kv_put(namespace, key, value, ttl_s)


def event(n: int) -> StampedEvent:
    return StampedEvent(float(n), "voice", "call-1", "node_entered", {"node": f"n{n}"})


def spooled(store: FlakyStore, limit: int = 100) -> SpooledJourney:
    return SpooledJourney(store, limit=limit, backoff=Backoff(initial_s=0.01, maximum_s=0.01))


def nodes(store: MemoryJourney, key: str = "k") -> list[str]:
    return [e.data["node"] for e in store.events(key)]


async def test_appends_while_the_store_is_down_are_accepted_and_stored_in_order_when_it_returns():
    store = FlakyStore()
    journey = spooled(store)
    await journey.append("k", [event(1)])
    store.down = True
    await journey.append("k", [event(2)])
    await journey.append("k", [event(3), event(4)])
    assert nodes(store) == ["n1"] and journey.stats.waiting == 3

    store.down = False
    await journey.drained()

    assert nodes(store) == ["n1", "n2", "n3", "n4"]
    assert (journey.stats.waiting, journey.stats.flushed, journey.stats.outages) == (0, 3, 1)


async def test_an_append_after_the_store_came_back_waits_behind_the_spooled_ones():
    store = FlakyStore()
    journey = spooled(store)
    store.down = True
    await journey.append("k", [event(1)])
    store.down = False
    await journey.append("k", [event(2)])  # the spool still holds n1: n2 must not overtake it
    await journey.drained()

    assert nodes(store) == ["n1", "n2"]


async def test_a_full_spool_drops_the_new_events_and_counts_them_without_blocking():
    store = FlakyStore()
    journey = spooled(store, limit=2)
    store.down = True
    await journey.append("k", [event(1), event(2)])
    await asyncio.wait_for(journey.append("k", [event(3)]), 1)

    store.down = False
    await journey.drained()
    assert nodes(store) == ["n1", "n2"]
    assert journey.stats.dropped == 1


async def test_a_batch_the_store_refuses_for_good_does_not_hold_up_the_rest():
    store = FlakyStore()
    journey = spooled(store)
    store.down = True
    await journey.append("bad", [event(1)])
    await journey.append("k", [event(2)])
    store.refused.add("bad")
    store.down = False
    await journey.drained()

    assert nodes(store) == ["n2"] and journey.stats.dropped == 1


async def test_close_stores_what_waits_before_closing_the_store():
    store = FlakyStore()
    journey = spooled(store)
    store.down = True
    await journey.append("k", [event(1)])
    store.down = False
    await journey.close()

    assert nodes(store) == ["n1"]


class HangingStore(FlakyStore):
    """A store whose appends hang (a locked SQLite file, a dead connection) until released."""

    def __init__(self) -> None:
        super().__init__()
        self.released = asyncio.Event()
        self.fail_when_released = False
        self.attempts = 0

    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        self.attempts += 1
        if not self.released.is_set():
            await self.released.wait()
            if self.fail_when_released:
                raise StoreUnavailable("test", "append", TimeoutError("database is locked"))
        await super().append(key, events)


async def test_a_hanging_store_costs_a_call_the_answer_time_at_most_then_the_events_wait_in_order():
    store = HangingStore()
    journey = SpooledJourney(store, answer_within_s=0.05, backoff=Backoff(initial_s=0.01, maximum_s=0.01))
    async with asyncio.timeout(1):  # neither append waits for the store
        await journey.append("k", [event(1)])
        await journey.append("k", [event(2)])
    assert journey.stats.outages == 1 and journey.stats.waiting == 2

    store.released.set()
    await journey.drained()

    assert nodes(store) == ["n1", "n2"] and store.attempts == 2  # the slow write was not written twice


async def test_a_write_that_hung_and_then_failed_is_retried_before_what_came_after():
    store = HangingStore()
    store.fail_when_released = True
    journey = SpooledJourney(store, answer_within_s=0.05, backoff=Backoff(initial_s=0.01, maximum_s=0.01))
    await journey.append("k", [event(1)])
    await journey.append("k", [event(2)])

    store.released.set()
    await journey.drained()

    assert nodes(store) == ["n1", "n2"] and journey.stats.dropped == 0


async def test_a_claim_put_while_the_store_is_down_is_spooled_and_stored_when_it_returns():
    store = FlakyStore()
    journey = spooled(store)
    store.down = True

    assert await journey.kv_put_or_spool("token", "t1", {"interaction": "call-1"}, ttl_s=60) == "spooled"
    assert await store.kv_get("token", "t1") is None
    store.down = False
    await journey.drained()

    assert await store.kv_get("token", "t1") == {"interaction": "call-1"}


async def test_a_claim_put_while_the_store_answers_is_stored_at_once():
    store = FlakyStore()
    journey = spooled(store)

    assert await journey.kv_put_or_spool("token", "t1", {"interaction": "call-1"}, ttl_s=60) == "stored"
    assert await store.kv_get("token", "t1") == {"interaction": "call-1"}


async def test_a_claim_put_that_finds_the_spool_full_fails_so_no_token_is_handed_out_that_never_resolves():
    store = FlakyStore()
    journey = spooled(store, limit=1)
    store.down = True
    await journey.append("k", [event(1)])

    with pytest.raises(StoreUnavailable, match="spool is full"):
        await journey.kv_put_or_spool("token", "t1", {"interaction": "call-1"}, ttl_s=60)


async def test_a_spooled_claim_that_expired_before_the_store_returned_is_not_written():
    store = FlakyStore()
    journey = spooled(store)
    store.down = True
    await journey.kv_put_or_spool("token", "t1", {"interaction": "call-1"}, ttl_s=0.01)
    await asyncio.sleep(0.05)
    store.down = False
    await journey.drained()

    assert await store.kv_get("token", "t1") is None


class SlowStore(FlakyStore):
    """Each append takes a while: how many run at once shows whether the spool sends in waves."""

    def __init__(self) -> None:
        super().__init__()
        self.running = self.most_at_once = 0

    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        if self.down:
            raise StoreUnavailable("test", "append", ConnectionError("the database restarts"))
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        await asyncio.sleep(0.001)
        self.running -= 1
        await super().append(key, events)


async def test_a_spool_drains_different_keys_at_once_and_each_keys_writes_in_order():
    store = SlowStore()
    journey = spooled(store)
    store.down = True
    for n in range(1, 4):
        for key in ("a", "b", "c"):
            await journey.append(key, [event(n)])
    store.down = False
    await journey.drained()

    assert store.most_at_once == 3  # one write per key at a time
    assert [nodes(store, key) for key in ("a", "b", "c")] == [["n1", "n2", "n3"]] * 3
