"""A lease in the shared kv table: one holder at a time for a job of the cluster."""

from __future__ import annotations

from ivr.journey.errors import StoreUnavailable
from ivr.journey.lease import Lease
from ivr.journey.memory import MemoryJourney
from tests.clock import FakeClock


def two(store: MemoryJourney) -> tuple[Lease, Lease]:
    return Lease(store, "dialer", "c1", ttl_s=10), Lease(store, "dialer", "c2", ttl_s=10)


async def test_the_first_to_ask_holds_it_and_the_other_does_not():
    first, second = two(MemoryJourney())

    assert [await first.hold(), await second.hold(), await first.hold()] == [True, False, True]
    assert second.other == "c1"


async def test_a_holder_that_stops_renewing_loses_it_once_it_expires():
    clock = FakeClock()
    first, second = two(MemoryJourney(clock=clock))
    await first.hold()
    clock.advance(9)
    assert await second.hold() is False
    clock.advance(2)

    assert await second.hold() is True
    assert await first.hold() is False


async def test_a_released_lease_is_taken_at_once():
    first, second = two(MemoryJourney())
    await first.hold()

    await first.release()

    assert await second.hold() is True


async def test_releasing_a_lease_one_does_not_hold_leaves_the_holder_alone():
    first, second = two(MemoryJourney())
    await first.hold()
    await second.hold()

    await second.release()

    assert await second.hold() is False


class Down(MemoryJourney):
    down = False

    async def kv_get_text(self, namespace: str, key: str) -> str | None:
        if self.down:
            raise StoreUnavailable("test", "read", ConnectionError("down"))
        return await super().kv_get_text(namespace, key)


async def test_a_holder_that_cannot_reach_the_store_steps_down_at_once():
    store = Down()
    lease = Lease(store, "dialer", "c1")
    await lease.hold()
    store.down = True

    assert await lease.hold() is False and lease.held is False
