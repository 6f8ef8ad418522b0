"""The USSD rate limit shared by several gateway processes through the journey's kv table."""

from __future__ import annotations

from collections.abc import Sequence

from ivr.journey.errors import StoreUnavailable
from ivr.journey.memory import MemoryJourney
from ivr.journey.ports import KvPut, StampedEvent
from ivr.ussd.config import RateLimit
from ivr.ussd.shared_ratelimit import NAMESPACE, SharedTokenBucket
from tests.clock import T0, FakeClock

NUMBER = "+79991234567"
POLICY = RateLimit(burst=3, per_minute=6)  # one token back every 10 s


async def allowed(limiter: SharedTokenBucket, times: int) -> list[bool]:
    return [await limiter.allow(NUMBER) for _ in range(times)]


async def test_two_processes_sharing_the_store_allow_the_burst_once_between_them():
    store, clock = MemoryJourney(), FakeClock()
    first, second = SharedTokenBucket(POLICY, store, clock), SharedTokenBucket(POLICY, store, clock)

    assert [await (first if i % 2 else second).allow(NUMBER) for i in range(5)] == [True, True, True, False, False]


async def test_the_bucket_refills_at_the_sustained_rate():
    store, clock = MemoryJourney(clock=FakeClock()), FakeClock()
    limiter = SharedTokenBucket(POLICY, store, clock)
    await allowed(limiter, 3)
    clock.advance(10)

    assert await allowed(limiter, 2) == [True, False]


class Racing(MemoryJourney):
    """Another process writes the bucket between this one's read and its write, once."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.raced = False

    async def put_and_append(self, puts: Sequence[KvPut], key: str, events: Sequence[StampedEvent]) -> None:
        if not self.raced:
            self.raced = True
            await super().put_and_append([KvPut(NAMESPACE, NUMBER, {"tokens": 0.5, "at": T0}, 60)], key, [])
        await super().put_and_append(puts, key, events)


async def test_a_bucket_written_by_another_process_meanwhile_is_read_again():
    clock = FakeClock()
    limiter = SharedTokenBucket(POLICY, Racing(clock), clock)

    assert await limiter.allow(NUMBER) is False  # the other process took the last token first


class Down(MemoryJourney):
    async def kv_get_text(self, namespace: str, key: str) -> str | None:
        raise StoreUnavailable("test", "read", ConnectionError("down"))


async def test_with_the_store_down_this_processs_own_bucket_decides():
    clock = FakeClock()
    limiter = SharedTokenBucket(POLICY, Down(), clock)

    assert await allowed(limiter, 4) == [True, True, True, False]


async def test_a_burst_of_zero_turns_the_limit_off():
    limiter = SharedTokenBucket(RateLimit(burst=0), Down(), FakeClock())

    assert await allowed(limiter, 10) == [True] * 10
