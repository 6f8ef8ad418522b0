"""CrmLookup: the caller-ID lookup never raises, keeps to its budget, caches, and respects the breaker."""

from __future__ import annotations

import asyncio
import time

import pytest

from ivr.crm.breaker import BreakerState, CircuitBreaker
from ivr.crm.errors import CrmBadResponse, CrmUnavailable
from ivr.crm.lookup import CrmLookup
from tests.unit.crm.fakes import FakeClock, FakeDirectory, anna

ANNA = anna()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory({ANNA.number: ANNA})


@pytest.fixture
def lookup(directory: FakeDirectory, clock: FakeClock) -> CrmLookup:
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=30, clock=clock)
    return CrmLookup(directory, budget_s=0.05, cache_ttl_s=60, negative_ttl_s=5, breaker=breaker, clock=clock)


async def test_a_known_caller_is_found_with_their_e164_number(lookup: CrmLookup) -> None:
    result = await lookup.lookup("8 999 123-45-67")
    assert (result.status, result.customer, result.number, result.error) == ("found", ANNA, ANNA.number, None)
    assert result.customer_fields()["name"] == "Anna"


async def test_an_unknown_caller_is_unknown_with_no_customer_fields(lookup: CrmLookup) -> None:
    result = await lookup.lookup("+79990001122")
    assert (result.status, result.customer, result.number) == ("unknown", None, "+79990001122")
    assert result.customer_fields() == {}


@pytest.mark.parametrize("raw", ["", None, "anonymous", "+7999\x001234567"])
async def test_a_withheld_or_garbage_caller_id_never_reaches_the_crm(lookup: CrmLookup, directory: FakeDirectory,
                                                                     raw: str | None) -> None:
    result = await lookup.lookup(raw)
    assert (result.status, result.number) == ("no-caller-id", None)
    assert directory.calls == []


async def test_a_repeat_caller_is_served_from_the_cache(lookup: CrmLookup, directory: FakeDirectory) -> None:
    await lookup.lookup("+79991234567")
    result = await lookup.lookup("89991234567")
    assert result.status == "found" and result.cached
    assert directory.calls == ["+79991234567"]


async def test_the_cache_expires_after_its_ttl(lookup: CrmLookup, directory: FakeDirectory,
                                               clock: FakeClock) -> None:
    await lookup.lookup(ANNA.number)
    clock.advance(60)
    assert not (await lookup.lookup(ANNA.number)).cached
    assert len(directory.calls) == 2


async def test_unknown_is_cached_only_briefly(lookup: CrmLookup, directory: FakeDirectory, clock: FakeClock) -> None:
    await lookup.lookup("+79990001122")
    assert (await lookup.lookup("+79990001122")).cached
    clock.advance(5)
    directory.customers["+79990001122"] = anna(id="C-new", number="+79990001122")
    assert (await lookup.lookup("+79990001122")).status == "found"


async def test_forget_drops_the_cached_answer(lookup: CrmLookup, directory: FakeDirectory) -> None:
    await lookup.lookup(ANNA.number)
    lookup.forget("8 999 123 45 67")
    assert not (await lookup.lookup(ANNA.number)).cached


async def test_a_slow_crm_gives_unavailable_within_the_budget(lookup: CrmLookup, directory: FakeDirectory) -> None:
    directory.delay_s = 5
    started = time.monotonic()
    result = await lookup.lookup(ANNA.number)
    assert time.monotonic() - started < 1
    assert result.status == "unavailable" and result.customer is None
    assert result.error == "CRM did not answer within 50 ms"


async def test_a_crm_that_is_down_gives_unavailable_with_the_reason(lookup: CrmLookup,
                                                                    directory: FakeDirectory) -> None:
    directory.fail = CrmUnavailable("connection refused", operation="by_number")
    result = await lookup.lookup(ANNA.number)
    assert result.status == "unavailable"
    assert result.error == "crm-unavailable: by_number: connection refused"


async def test_garbage_from_the_crm_gives_unavailable(lookup: CrmLookup, directory: FakeDirectory) -> None:
    directory.fail = CrmBadResponse("reply is not JSON", operation="by_number")
    assert (await lookup.lookup(ANNA.number)).status == "unavailable"


async def test_a_directory_returning_the_wrong_type_gives_unavailable(lookup: CrmLookup,
                                                                      directory: FakeDirectory) -> None:
    directory.answer = {"name": "Anna"}
    result = await lookup.lookup(ANNA.number)
    assert result.status == "unavailable" and "not a Customer" in (result.error or "")


async def test_a_bug_in_the_directory_gives_unavailable_not_an_exception(lookup: CrmLookup,
                                                                         directory: FakeDirectory) -> None:
    directory.fail = KeyError("oops")
    result = await lookup.lookup(ANNA.number)
    assert result.status == "unavailable" and "KeyError" in (result.error or "")


async def test_failures_are_not_cached(lookup: CrmLookup, directory: FakeDirectory) -> None:
    directory.fail = CrmUnavailable("down")
    await lookup.lookup(ANNA.number)
    directory.fail = None
    assert (await lookup.lookup(ANNA.number)).status == "found"


async def test_consecutive_failures_open_the_breaker_and_the_crm_is_not_asked(lookup: CrmLookup,
                                                                              directory: FakeDirectory) -> None:
    directory.fail = CrmUnavailable("down")
    for _ in range(3):
        await lookup.lookup(ANNA.number)
    result = await lookup.lookup(ANNA.number)
    assert result.status == "unavailable" and "circuit open" in (result.error or "")
    assert len(directory.calls) == 3


async def test_timeouts_count_as_failures_for_the_breaker(lookup: CrmLookup, directory: FakeDirectory) -> None:
    directory.delay_s = 5
    for _ in range(3):
        await lookup.lookup(ANNA.number)
    assert lookup.breaker.state is BreakerState.OPEN


async def test_after_the_reset_time_one_trial_closes_the_breaker(lookup: CrmLookup, directory: FakeDirectory,
                                                                 clock: FakeClock) -> None:
    directory.fail = CrmUnavailable("down")
    for _ in range(3):
        await lookup.lookup(ANNA.number)
    directory.fail = None
    clock.advance(30)
    assert (await lookup.lookup(ANNA.number)).status == "found"
    assert lookup.breaker.state is BreakerState.CLOSED


async def test_a_warm_cache_answers_even_while_the_breaker_is_open(lookup: CrmLookup,
                                                                   directory: FakeDirectory) -> None:
    await lookup.lookup(ANNA.number)
    directory.fail = CrmUnavailable("down")
    for _ in range(3):
        await lookup.lookup("+79990001122")
    assert lookup.breaker.state is BreakerState.OPEN
    assert (await lookup.lookup(ANNA.number)).status == "found"


async def test_a_cancelled_trial_does_not_leave_the_breaker_stuck(lookup: CrmLookup, directory: FakeDirectory,
                                                                  clock: FakeClock) -> None:
    directory.fail = CrmUnavailable("down")
    for _ in range(3):
        await lookup.lookup(ANNA.number)
    clock.advance(30)
    directory.fail, directory.delay_s = None, 0.02
    task = asyncio.create_task(lookup.lookup(ANNA.number))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    directory.delay_s = 0
    assert (await lookup.lookup(ANNA.number)).status == "found"


async def test_latency_is_reported_in_milliseconds(directory: FakeDirectory) -> None:
    directory.delay_s = 0.02
    result = await CrmLookup(directory).lookup(ANNA.number)
    assert result.latency_ms >= 15
