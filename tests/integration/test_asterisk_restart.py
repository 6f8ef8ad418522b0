"""Asterisk killed and started again under a running controller: nothing stays open, the next calls work.

The real Asterisk is killed (SIGKILL, as a crash or the OOM killer would) while a call waits
in a queue, then started again. The controller's AMI and ARI links come back by themselves,
the queued call (which Asterisk forgot, so no Hangup will ever say so) is journaled as lost,
and new calls on both drivers reach their queue.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from ivr.harness.calls import CallRequest, place_call
from ivr.journey.ports import StampedEvent
from ivr.journey.sqlite_store import SqliteJourneyStore
from ivr.runtime.local_asterisk import LocalAsterisk
from ivr.settings import Settings

pytestmark = pytest.mark.asterisk
CALLER = "79990005566"
IN_MENU = "79990005577"  # an ARI call still in the menu when Asterisk dies


def journey_of(path: Path, key: str) -> list[StampedEvent]:
    async def read() -> list[StampedEvent]:
        store = await SqliteJourneyStore.open(path)
        try:
            return list(await store.recent(key))
        finally:
            await store.close()

    return asyncio.run(read())


def wait_for_event(path: Path, kind: str, timeout_s: float, caller: str = CALLER) -> StampedEvent:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [e for e in journey_of(path, f"+{caller}") if e.type == kind]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no {kind} in the journey within {timeout_s:g} s"
        time.sleep(0.5)


def test_a_killed_asterisk_comes_back_and_the_controller_journals_the_calls_it_lost(
        asterisk: Settings, controller) -> None:
    local = LocalAsterisk(asterisk)
    journey = asterisk.path(asterisk.journey.sqlite_path)

    loop = asyncio.new_event_loop()
    calls = [loop.create_task(place_call(asterisk, CallRequest(dnis="100", keys="0", caller=CALLER, delay_s=3,
                                                               hold_s=90))),
             loop.create_task(place_call(asterisk, CallRequest(dnis="101", keys="", caller=IN_MENU, delay_s=3,
                                                               hold_s=90)))]
    try:
        loop.run_until_complete(asyncio.sleep(0))
        deadline = time.monotonic() + 30
        while not [e for e in journey_of(journey, f"+{CALLER}") if e.type == "route_decided"]:
            assert time.monotonic() < deadline, "the call never reached its queue"
            loop.run_until_complete(asyncio.sleep(0.5))
        queued = wait_for_event(journey, "route_decided", 1)

        for pid in local.asterisk_pids():
            os.kill(pid, signal.SIGKILL)
        local.up()

        lost = wait_for_event(journey, "call_lost", 30)
        ended = wait_for_event(journey, "hangup", 30, caller=IN_MENU)
    finally:
        for call in calls:  # their phones are still up: Asterisk forgot them
            call.cancel()
        loop.run_until_complete(asyncio.gather(*calls, return_exceptions=True))
        loop.close()

    assert lost.interaction == queued.interaction
    assert lost.data == {"queue": "support", "reason": "asterisk_restarted"}
    assert ended.channel == "voice"
    deadline = time.monotonic() + 20
    while controller.health().get("live_calls") != 0:
        assert time.monotonic() < deadline, "a call of the dead Asterisk is still live in the controller"
        time.sleep(0.5)
    deadline = time.monotonic() + 20
    while controller.health().get("ari_connected") is not True:
        assert time.monotonic() < deadline, "ARI did not reconnect within 20 s"
        time.sleep(0.5)
    for dnis in ("100", "101"):  # FastAGI and ARI
        after = asyncio.run(place_call(asterisk, CallRequest(dnis=dnis, keys="0", delay_s=2, hold_s=3)))
        assert after.queue is not None and after.queue.name == "support", f"{dnis}: {after.errors}"
