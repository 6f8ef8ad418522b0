"""The SMS rate limit shared by several controllers through the journey's kv table."""

from __future__ import annotations

from ivr.journey.errors import StoreUnavailable
from ivr.journey.memory import MemoryJourney
from ivr.journey.ports import KvPut
from ivr.sms.shared_ratelimit import NAMESPACE, SharedSlidingWindow
from tests.clock import T0, FakeClock

NUMBER = "+79991234567"


async def test_two_controllers_sharing_the_store_allow_the_count_once_between_them():
    clock = FakeClock()
    store = MemoryJourney(clock=clock)
    first, second = SharedSlidingWindow(3, 60, store, clock), SharedSlidingWindow(3, 60, store, clock)

    waits = [await (first if i % 2 else second).check(NUMBER) for i in range(4)]

    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] == 60.0


async def test_the_wait_is_until_the_oldest_counted_message_leaves_the_window():
    clock = FakeClock()
    window = SharedSlidingWindow(2, 60, MemoryJourney(clock=clock), clock)
    await window.check(NUMBER)
    clock.advance(20)
    await window.check(NUMBER)
    clock.advance(10)

    assert await window.check(NUMBER) == 30.0
    clock.advance(30)
    assert await window.check(NUMBER) == 0.0


async def test_a_refused_message_is_not_counted():
    clock = FakeClock()
    window = SharedSlidingWindow(1, 60, MemoryJourney(clock=clock), clock)
    await window.check(NUMBER)
    for _ in range(5):
        await window.check(NUMBER)
    clock.advance(60)

    assert await window.check(NUMBER) == 0.0


async def test_a_damaged_entry_is_an_empty_window():
    clock = FakeClock()
    store = MemoryJourney(clock=clock)
    await store.put_and_append([KvPut(NAMESPACE, NUMBER, {"times": ["x", True, None]}, 60)], NUMBER, [])

    assert await SharedSlidingWindow(1, 60, store, clock).check(NUMBER) == 0.0


class Down(MemoryJourney):
    async def kv_get_text(self, namespace: str, key: str) -> str | None:
        raise StoreUnavailable("test", "read", ConnectionError("down"))


async def test_with_the_store_down_this_processs_own_window_decides():
    window = SharedSlidingWindow(2, 60, Down(), FakeClock())

    assert [await window.check(NUMBER) > 0 for _ in range(3)] == [False, False, True]


async def test_times_are_those_of_the_clock_it_is_given():
    clock = FakeClock()
    store = MemoryJourney(clock=clock)
    await SharedSlidingWindow(5, 60, store, clock).check(NUMBER)

    assert await store.kv_get(NAMESPACE, NUMBER) == {"times": [T0]}
