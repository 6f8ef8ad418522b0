"""The HTTP CRM misbehaving: the lookup answers "unavailable" with the reason, in time, and never raises."""

from __future__ import annotations

import dataclasses
import socket
import time

import pytest

from ivr.crm.actions import CrmActions
from ivr.crm.breaker import BreakerState, CircuitBreaker
from ivr.crm.http_config import HttpCrmConfig
from ivr.crm.http_directory import HttpDirectory
from ivr.crm.lookup import CrmLookup
from ivr.flow.context import CallerContext
from tests.integration.crm.conftest import ANNA, FakeCrm

NUMBER = "+79991234567"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_hanging_crm_gives_unavailable_within_the_budget(directory: HttpDirectory,
                                                                 fake_crm: FakeCrm) -> None:
    fake_crm.mode = "hang"
    started = time.monotonic()
    result = await CrmLookup(directory, budget_s=0.3).lookup(NUMBER)
    assert time.monotonic() - started < 1
    assert result.status == "unavailable" and "did not answer within 300 ms" in (result.error or "")
    assert fake_crm.count == 1


async def test_a_hanging_crm_fails_an_action_within_the_budget(directory: HttpDirectory, fake_crm: FakeCrm) -> None:
    fake_crm.mode = "hang"
    started = time.monotonic()
    context = CallerContext(customer={"id": "C-100231"})
    result = await CrmActions(directory, budget_s=0.3).run("balance", {}, context, interaction="call-1")
    assert time.monotonic() - started < 1
    assert not result.ok and "did not answer" in result.data["error"]


@pytest.mark.parametrize(("garbage", "reason"), [
    (b"<html><body>Welcome to nginx!</body></html>", "not JSON"),
    (b'{"data": {"contact": ', "not JSON"),
    (b"\xff\xfe\x00garbage", "not JSON"),
    (b'{"data": {"contact": "Anna"}}', "not an object"),
    (b'{"data": {"contact": {"contact_id": "C-1", "first_name": "A", "phones": {"mobile": "+79991234567"},'
     b' "billing": {"balance": {"amount": "lots"}}}}}', "balance"),
    (b'{"data": {"contact": {"contact_id": "C-1", "first_name": ["A"], "phones": {"mobile": "+79991234567"}}}}',
     "name"),
    (b'{"data": {"contact": {"contact_id": "C-1", "first_name": "A", "phones": {"mobile": "+79991234567"},'
     b' "billing": {"balance": {"amount": NaN}}}}}', "not JSON"),
])
async def test_garbage_from_the_crm_gives_unavailable_with_the_reason(directory: HttpDirectory, fake_crm: FakeCrm,
                                                                      garbage: bytes, reason: str) -> None:
    fake_crm.mode, fake_crm.garbage = "garbage", garbage
    result = await CrmLookup(directory).lookup(NUMBER)
    assert result.status == "unavailable" and result.customer is None
    assert "crm-bad-response" in (result.error or "") and reason in (result.error or "")


async def test_an_oversized_reply_gives_unavailable(config: HttpCrmConfig, fake_crm: FakeCrm) -> None:
    fake_crm.contacts["79991234567"] = {**ANNA, "padding": "x" * 300_000}
    async with HttpDirectory(config) as directory:
        result = await CrmLookup(directory).lookup(NUMBER)
    assert result.status == "unavailable" and "larger than" in (result.error or "")


async def test_500s_open_the_breaker_and_then_no_request_reaches_the_crm(directory: HttpDirectory,
                                                                         fake_crm: FakeCrm) -> None:
    fake_crm.mode = "500"
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=30, clock=clock)
    lookup = CrmLookup(directory, breaker=breaker, clock=clock)
    results = [await lookup.lookup(NUMBER) for _ in range(10)]
    assert [r.status for r in results] == ["unavailable"] * 10
    assert "HTTP 500" in (results[0].error or "") and "circuit open" in (results[-1].error or "")
    assert fake_crm.count == 3
    assert breaker.state is BreakerState.OPEN


async def test_after_the_reset_time_one_trial_reaches_the_recovered_crm(directory: HttpDirectory,
                                                                        fake_crm: FakeCrm) -> None:
    fake_crm.mode = "500"
    clock = Clock()
    lookup = CrmLookup(directory, breaker=CircuitBreaker(failure_threshold=3, reset_after_s=30, clock=clock),
                       clock=clock)
    for _ in range(5):
        await lookup.lookup(NUMBER)
    fake_crm.mode = "healthy"
    clock.now += 30
    assert (await lookup.lookup(NUMBER)).status == "found"
    assert fake_crm.count == 4


async def test_a_crm_that_refuses_connections_gives_unavailable(config: HttpCrmConfig) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = dataclasses.replace(config, base_url=f"http://127.0.0.1:{port}")
    async with HttpDirectory(closed) as directory:
        result = await CrmLookup(directory).lookup(NUMBER)
    assert result.status == "unavailable" and "crm-unavailable" in (result.error or "")
