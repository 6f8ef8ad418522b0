"""The ARI driver on the real Asterisk: the same menus as FastAGI, and every failure ends somewhere known."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from ivr.harness.calls import CallRequest, place_call
from ivr.harness.tcp_proxy import TcpProxy
from tests.integration.speech_support import AGI_NUMBER, ARI_NUMBER, call_events, kinds, speech_env

pytestmark = pytest.mark.asterisk


def nodes(record) -> list[str]:
    return record.variables.get("IVR_PATH", "").split(">")


@pytest.mark.parametrize(("dnis", "driver"), [(ARI_NUMBER, "ari"), (AGI_NUMBER, "agi")])
def test_the_same_menu_by_keys_reaches_the_same_place_on_both_drivers(start_controller, place_call, tmp_path,
                                                                      dnis, driver):
    journey = tmp_path / "journey.sqlite"
    start_controller(**speech_env(journey, IVR_SPEECH_MODEL=""))

    record = place_call(dnis=dnis, keys="3", delay_s=3, hold_s=4)

    assert record.errors == []
    assert record.variables["IVR_DRIVER"] == driver
    assert nodes(record) == ["main_ko", "roaming_ko"]
    assert record.queue is not None and record.queue.name == "support"
    started = [e for e in call_events(journey, record.uniqueid) if e.type == "call_started"]
    assert [e.data["driver"] for e in started] == [driver]


def test_the_demo_menu_over_ari_routes_a_caller_who_presses_zero(controller, place_call):
    record = place_call(dnis="101", keys="0", delay_s=3, hold_s=6)

    assert record.errors == []
    assert record.variables["IVR_DRIVER"] == "ari"
    assert nodes(record) == ["greeting_anonymous", "main", "operator_standard"]
    assert record.queue is not None and record.queue.name == "support"


def test_the_self_test_number_over_ari_answers_and_reads_a_digit(controller, place_call):
    record = place_call(dnis="90002", keys="0", delay_s=2, hold_s=3)

    assert record.variables["IVR_DIGIT"] == "0"
    assert record.queue is not None and record.queue.name == "support"


def test_a_dropped_events_socket_mid_call_is_reconnected_and_the_call_ends_where_the_caller_chose(
        asterisk, start_controller, tmp_path):
    journey = tmp_path / "journey.sqlite"
    proxy = TcpProxy("127.0.0.1", asterisk.ari.port).start()
    try:
        controller = start_controller(**speech_env(journey, IVR_SPEECH_MODEL="", IVR_ARI_PORT=str(proxy.port)))

        async def scenario():
            call = asyncio.create_task(place_call(asterisk, CallRequest(
                transport="sipp", dnis=ARI_NUMBER, keys="0", delay_s=6, hold_s=4)))
            await _until(lambda: controller.health()["live_calls"] == 1, "the call never reached the controller")
            proxy.drop()  # during the greeting: events and REST connections cut at once
            await _until(lambda: controller.health()["ari_connected"] is False or proxy.drops, "no drop")
            return await call

        record = asyncio.run(scenario())
    finally:
        proxy.stop()

    assert record.errors == []
    assert nodes(record) == ["main_ko", "agent_ko"]
    assert record.queue is not None and record.queue.name == "support"
    events = call_events(journey, record.uniqueid)
    assert [e.data["outcome"] for e in events if e.type == "call_readopted"] == ["resumed"]


def test_a_call_left_in_the_application_by_a_killed_controller_goes_to_the_fallback_queue_on_restart(
        asterisk, start_controller, tmp_path):
    journey = tmp_path / "journey.sqlite"
    env = speech_env(journey, IVR_SPEECH_MODEL="")
    controller = start_controller(**env)

    async def scenario():
        call = asyncio.create_task(place_call(asterisk, CallRequest(
            transport="sipp", dnis=ARI_NUMBER, keys="", delay_s=1, hold_s=20)))
        await _until(lambda: controller.health()["live_calls"] == 1, "the call never reached the controller")
        controller.kill()
        await asyncio.to_thread(controller.start)  # a new process: it has no session for the call
        return await call

    record = asyncio.run(scenario())

    assert record.variables["IVR_FALLBACK"] == "controller-restarted"
    assert record.queue is not None and record.queue.name == asterisk.queues.fallback
    events = call_events(journey, record.uniqueid)
    assert [e.data["outcome"] for e in events if e.type == "call_readopted"] == ["fallback"]


def test_a_call_whose_controller_died_for_good_reaches_the_fallback_queue_by_the_dead_man_timer(
        asterisk, start_controller, tmp_path):
    controller = start_controller(**speech_env(tmp_path / "journey.sqlite", IVR_SPEECH_MODEL="",
                                               IVR_ARI_DEADMAN="4"))

    async def scenario():
        call = asyncio.create_task(place_call(asterisk, CallRequest(
            transport="sipp", dnis=ARI_NUMBER, keys="", delay_s=1, hold_s=12)))
        await _until(lambda: controller.health()["live_calls"] == 1, "the call never reached the controller")
        controller.kill()
        return await call

    record = asyncio.run(scenario())

    assert record.variables["IVR_FALLBACK"] == "controller-lost"
    assert record.queue is not None and record.queue.name == asterisk.queues.fallback


def test_an_ari_number_with_no_controller_connected_goes_to_the_fallback_queue(asterisk, place_call, start_controller,
                                                                               tmp_path):
    controller = start_controller(**speech_env(tmp_path / "journey.sqlite", IVR_SPEECH_MODEL=""))
    controller.stop()  # the AstDB keeps 7000 on ARI; the Stasis application is gone with the controller

    record = place_call(dnis=ARI_NUMBER, keys="", delay_s=1, hold_s=3)

    assert record.variables["IVR_FALLBACK"] == "controller-ari-failed"
    assert record.queue is not None and record.queue.name == asterisk.queues.fallback


def test_asterisk_restarted_with_a_call_in_the_application_ends_its_session_and_the_next_call_works(
        asterisk, start_controller, tmp_path):
    journey = tmp_path / "journey.sqlite"
    controller = start_controller(**speech_env(journey, IVR_SPEECH_MODEL=""))

    async def scenario():
        call = asyncio.create_task(place_call(asterisk, CallRequest(
            transport="sipp", dnis=ARI_NUMBER, keys="", delay_s=1, hold_s=15, timeout_s=40)))
        await _until(lambda: controller.health()["live_calls"] == 1, "the call never reached the controller")
        await asyncio.to_thread(_ivr, "asterisk", "down")
        await asyncio.to_thread(_ivr, "asterisk", "up")
        await _until(lambda: controller.health()["live_calls"] == 0, "the session outlived its channel", 20)
        await _until(lambda: controller.health()["ari_connected"] is True, "ARI never came back", 30)
        first = await call
        return first, await place_call(asterisk, CallRequest(transport="sipp", dnis=ARI_NUMBER, keys="0",
                                                             delay_s=3, hold_s=4))

    first, second = asyncio.run(scenario())

    assert "hangup" in kinds(call_events(journey, first.uniqueid))  # journaled as ended
    assert nodes(second) == ["main_ko", "agent_ko"]


async def _until(check, message: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail(message)


def _ivr(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "ivr", *args], check=True, capture_output=True, timeout=120)
