"""Callbacks on the real Asterisk: the place is kept in app_queue while the customer is off the line.

Three callers need the support queue while no agent is free. A waits; B takes the callback
offer and hangs up; C waits. Before any agent is there, app_queue itself lists A, then B's
place, then C. Then one agent registers and answers three calls in turn: A; then B (the
agent leg carries a token whose journey shows the callback); then C. Agent first, the
agent takes B's place, hears the whisper, and B's phone rings; customer first, B's phone
rings as soon as B's place is next (while the agent still talks to A) and B, answering,
takes the place over.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ivr.harness.agent_phone import AgentPhone
from ivr.harness.calls import CallRequest, place_call
from ivr.voice.ami import AmiClient
from ivr.voice.queue_monitor import parse_queue_status

pytestmark = pytest.mark.asterisk
A, B, C = "+79990001101", "+79990001102", "+79990001103"  # not demo customers: the support queue, priority 0
TRUNK_PEER_PORT = 5070  # where Asterisk sends calls out through the demo trunk (pjsip.conf)


def policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "callbacks.yaml"
    path.write_text(text)
    return str(path)


def context(settings, token: str) -> dict:
    req = urllib.request.Request(f"http://{settings.http.host}:{settings.http.port}/context/{token}",
                                 headers={"X-API-Key": settings.agent_api.key})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


async def queue_entries(settings, queue: str) -> list[str]:
    """The support queue's entries in order, as app_queue lists them: caller numbers, or cb:<number>."""
    async with AmiClient(settings.ami.local_host, settings.ami.port, settings.ami.user, settings.ami.secret) as ami:
        _, entries = parse_queue_status(await ami.queue_status())
    return [e.channel for e in entries.get(queue, [])]


async def until_entries(settings, queue: str, count: int, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = await queue_entries(settings, queue)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def hang_up_places(settings) -> None:
    """Give up every callback place still in a queue, and forget every attempt's result."""
    async with AmiClient(settings.ami.local_host, settings.ami.port, settings.ami.user, settings.ami.secret) as ami:
        await ami.action({"Action": "Hangup", "Channel": "/^Local\\/cb/"})
        for key in await ami.db_tree("ivr_callback"):
            await ami.db_del("ivr_callback", key)


@pytest.fixture
def no_places_left(asterisk):
    """A test that leaves a place behind (a failure halfway) must not hand it to a later test's agent."""
    yield
    asyncio.run(hang_up_places(asterisk))


@pytest.mark.parametrize("mode", ["agent_first", "customer_first"])
def test_a_callback_keeps_its_place_between_two_callers_who_wait(mode, asterisk, start_controller, tmp_path,
                                                                 no_places_left):
    start_controller(IVR_JOURNEY_SQLITE_PATH=str(tmp_path / "journey.sqlite"),
                     IVR_CRM_SQLITE_PATH=str(tmp_path / "crm.sqlite"),
                     IVR_ROUTING_CALLBACKS=policy(tmp_path, f"defaults:\n  offer_after_s: 0\n  ring_s: 20\n"
                                                            f"  mode: {mode}\n"))

    async def scenario():
        waiting = "0WWWW0"  # the operator; then, offered a callback, 0: keep waiting
        a = asyncio.create_task(place_call(asterisk, CallRequest(caller=A, keys=waiting, delay_s=9, hold_s=150)))
        await until_entries(asterisk, "support", 1)
        b = await place_call(asterisk, CallRequest(caller=B, keys="0WWWW1WWWW1", delay_s=9, hold_s=12))
        await until_entries(asterisk, "support", 2)
        c = asyncio.create_task(place_call(asterisk, CallRequest(caller=C, keys=waiting, delay_s=9, hold_s=150)))
        before = await until_entries(asterisk, "support", 3)
        # The agent hangs up on each caller after talk_s: B's callback, too, so talk_s leaves
        # room for the whisper (about 5 s) before B's phone rings, and for B to answer.
        async with AgentPhone("customer", "", f"127.0.0.1:{asterisk.sip.port}", register=False,
                              port=TRUNK_PEER_PORT, talk_s=60, ring_timeout_s=120) as customer, \
                AgentPhone("agent1", asterisk.sip.agent_password, f"127.0.0.1:{asterisk.sip.port}",
                           calls=3, talk_s=11, ring_timeout_s=150) as agent:
            answered = await agent.callers(3, timeout=200)
            called_back = await customer.callers(1, timeout=5)
            rung = (customer.invite_times()[0], agent.invite_times()[1])
        return before, answered, called_back, b, await a, await c, rung

    before, answered, called_back, b, a, c, (customer_rung, agent_rung) = asyncio.run(scenario())

    # app_queue's own order while nobody was free: A, B's kept place, C
    assert len(before) == 3
    assert before[0].startswith("PJSIP/") and before[2].startswith("PJSIP/")
    assert before[1].startswith("Local/cb") and "@ivr-callback-hold-" in before[1]
    # the one agent took A, then B's place, then C
    froms = [f for f, _ in answered]
    assert A[1:] in froms[0] and B[1:] in froms[1] and C[1:] in froms[2], froms
    assert "100" in called_back[0][0]  # the customer sees the service number calling
    if mode == "customer_first":  # B's phone rang while the agent still talked to A
        assert customer_rung < agent_rung
    else:  # the agent took B's place first, then B's phone rang
        assert agent_rung < customer_rung
    token = answered[1][1]
    assert token, "the agent leg of a callback carries the context token"
    journey = context(asterisk, token)["journey"]
    kinds = [e["type"] for e in journey]
    for kind in ("callback_requested", "callback_connected", "callback_finished", "agent_connected"):
        assert kind in kinds, kinds
    requested = next(e for e in journey if e["type"] == "callback_requested")
    assert requested["channel"] == "voice" and requested["data"]["number"] == B
    assert requested["interaction"] == b.uniqueid
    finished = next(e for e in journey if e["type"] == "callback_finished")
    assert finished["data"]["outcome"] == "completed"
    assert a.uniqueid and c.uniqueid


def place_ids(channels: list[str]) -> list[str]:
    return [c[len("Local/"):].split("@", 1)[0] for c in channels if c.startswith("Local/cb")]


def ivr(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr", *args], check=False, capture_output=True, text=True,
                          timeout=180, env={**os.environ, **(env or {})})


def test_callbacks_outlive_a_killed_controller_and_an_asterisk_restart_in_order_and_once(
        asterisk, start_controller, tmp_path, no_places_left):
    env = {"IVR_JOURNEY_SQLITE_PATH": str(tmp_path / "journey.sqlite"),
           "IVR_CRM_SQLITE_PATH": str(tmp_path / "crm.sqlite"),
           "IVR_ROUTING_CALLBACKS": policy(tmp_path, "defaults:\n  offer_after_s: 0\n")}
    first = start_controller(**env)
    booking = "0WWWW1WWWW1"

    async def scenario():
        await place_call(asterisk, CallRequest(caller=B, keys=booking, delay_s=9, hold_s=12))
        await until_entries(asterisk, "support", 1)
        await place_call(asterisk, CallRequest(caller=C, keys=booking, delay_s=9, hold_s=12))
        placed = await until_entries(asterisk, "support", 2)
        first.kill()
        await asyncio.to_thread(start_controller, **env)
        await asyncio.sleep(5)  # five rounds of the new controller's dialer
        after_kill = await queue_entries(asterisk, "support")
        await asyncio.to_thread(ivr, "asterisk", "down")
        await asyncio.to_thread(ivr, "asterisk", "up")
        await until_entries(asterisk, "support", 2, timeout=60)
        await asyncio.sleep(5)
        return placed, after_kill, await queue_entries(asterisk, "support")

    try:
        placed, after_kill, after_restart = asyncio.run(scenario())
        listed = json.loads(ivr("callbacks", "list", "--json", env=env).stdout)
    finally:  # give the places up: no later test's agent may be handed one
        for callback_id in json.loads(ivr("callbacks", "list", "--json", env=env).stdout or "[]"):
            ivr("callbacks", "cancel", callback_id["id"], env=env)
        asyncio.run(until_empty(asterisk, "support"))

    ids = place_ids(placed)
    assert len(ids) == 2
    assert after_kill == placed  # the new controller found both places and made none again
    assert place_ids(after_restart) == ids and len(after_restart) == 2  # re-made once each, in their order
    assert [(c["id"], c["state"], c["attempts"]) for c in listed] == [(ids[0], "waiting", 0), (ids[1], "waiting", 0)]


async def until_empty(settings, queue: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while await queue_entries(settings, queue) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
