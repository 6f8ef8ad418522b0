"""A controller that dies in the middle of a call must not drop the caller."""

from __future__ import annotations

import asyncio
import time

import pytest

from ivr.harness.calls import CallRequest, place_call

pytestmark = pytest.mark.asterisk


def test_controller_killed_mid_call_sends_the_caller_to_the_fallback_queue(asterisk, controller):
    async def scenario():
        # The caller waits 6 s before pressing anything: the controller is inside GET DATA.
        call = asyncio.create_task(place_call(asterisk, CallRequest(
            transport="sipp", dnis="90001", keys="1", delay_s=6, hold_s=3)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if controller.health()["live_calls"] == 1:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the call never reached the controller")
        controller.kill()
        return await call

    record = asyncio.run(scenario())

    assert record.answered
    assert record.variables["IVR_FALLBACK"].startswith("controller-")
    assert record.queue is not None and record.queue.name == asterisk.queues.fallback
    assert record.variables.get("IVR_RESULT", "") == ""
