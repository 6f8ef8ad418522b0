"""Context follows the customer from person to person, on the real Asterisk with SIPp phones.

The demo debtor calls and presses 0: the collections agent (agent3) answers with the
context token. In the first test agent3 writes a note and transfers the call by SIP REFER
to the ``experts`` queue; agent2 gets the call with the same token, and the context API
shows agent2 the IVR path, the transfer and agent3's note. In the second, agent3 pulls an
expert in through the agent API, all three talk, agent3 hangs up and the caller stays with
the expert; the journey has each step.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest

from ivr.harness.agent_phone import AgentPhone
from ivr.harness.calls import CallRequest, place_call

pytestmark = pytest.mark.asterisk
IVAN = "+79992088812"  # the demo debtor: 0 takes him to collections (agent3)


def api(settings, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://{settings.http.host}:{settings.http.port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"X-API-Key": settings.agent_api.key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def phone(asterisk, agent: str, **kw) -> AgentPhone:
    return AgentPhone(agent, asterisk.sip.agent_password, f"127.0.0.1:{asterisk.sip.port}", **kw)


def call_events(context: dict, uniqueid: str) -> list[dict]:
    return [e for e in reversed(context["journey"]) if e["interaction"] == uniqueid]  # oldest first


async def until(check, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        found = await asyncio.to_thread(check)
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s")
        await asyncio.sleep(0.3)


def test_a_refer_to_the_experts_queue_reaches_agent2_with_the_same_token_and_agent3s_note(
        asterisk, start_controller, tmp_path):
    start_controller(IVR_JOURNEY_SQLITE_PATH=str(tmp_path / "journey.sqlite"),
                     IVR_CRM_SQLITE_PATH=str(tmp_path / "crm.sqlite"))

    async def scenario():
        async with phone(asterisk, "agent3", refer_to="experts", refer_after_s=4) as first, \
                phone(asterisk, "agent2", talk_s=3) as expert:
            placed = asyncio.create_task(place_call(asterisk, CallRequest(
                caller=IVAN, dnis="100", keys="0", delay_s=9, hold_s=40)))
            token = await first.answered(60)
            note = await asyncio.to_thread(api, asterisk, "POST", f"/agent/{token}/note", {
                "agent": "agent3", "text": "Will pay on Friday. Card 4111 1111 1111 1111 declined, PIN 4821 tried.",
                "wrapup": "promise-to-pay"})
            second_token = await expert.answered(60)
            return token, note, second_token, await placed

    token, note, second_token, record = asyncio.run(scenario())
    status, context = api(asterisk, "GET", f"/context/{second_token}")

    assert note[0] == 200 and note[1]["redacted"] == ["card number", "pin"]
    assert second_token == token
    assert status == 200
    steps = call_events(context, record.uniqueid)
    kinds = [e["type"] for e in steps]
    assert kinds.index("key_pressed") < kinds.index("call_transferred")
    transfer = next(e for e in steps if e["type"] == "call_transferred")
    assert (transfer["data"]["by"], transfer["data"]["to"], transfer["data"]["via"]) == ("agent3", "experts", "phone")
    rerouted = next(e for e in steps if e["type"] == "route_decided" and e["data"].get("transfer"))
    assert (rerouted["data"]["queue"], rerouted["data"]["priority"]) == ("experts", 5)  # the debtor's priority kept
    agents = [(e["data"]["agent"], e["data"]["queue"]) for e in steps if e["type"] == "agent_connected"]
    assert agents == [("agent3", "collections"), ("agent2", "experts")]
    note_event = next(e for e in steps if e["type"] == "agent_note")
    assert note_event["data"]["wrapup"] == "promise-to-pay"
    assert "4111" not in note_event["data"]["text"] and "4821" not in note_event["data"]["text"]
    assert "Will pay on Friday." in note_event["data"]["text"]


def test_an_expert_pulled_in_by_the_agent_api_stays_with_the_caller_after_the_agent_leaves(
        asterisk, start_controller, tmp_path):
    start_controller(IVR_JOURNEY_SQLITE_PATH=str(tmp_path / "journey.sqlite"),
                     IVR_CRM_SQLITE_PATH=str(tmp_path / "crm.sqlite"))

    def joined(token: str, who: str, room: str):
        _, context = api(asterisk, "GET", f"/context/{token}")
        return any(e["type"] == "participant_joined" and e["data"].get("who") == who and e["data"].get("room") == room
                   for e in context.get("journey", []))

    async def scenario():
        async with phone(asterisk, "agent3", talk_s=20) as first, phone(asterisk, "agent2", talk_s=90) as expert:
            placed = asyncio.create_task(place_call(asterisk, CallRequest(
                caller=IVAN, dnis="100", keys="0", delay_s=9, hold_s=45)))
            token = await first.answered(60)
            await until(lambda: api(asterisk, "GET", f"/context/{token}")[1].get("on_the_call"), "agent3 on the call")
            consult = await asyncio.to_thread(api, asterisk, "POST", f"/agent/{token}/consult",
                                              {"agent": "agent3", "to": "experts"})
            expert_token = await expert.answered(30)
            await until(lambda: joined(token, "agent2", "consultation"), "the expert in the consultation")
            conference = await asyncio.to_thread(api, asterisk, "POST", f"/agent/{token}/conference",
                                                 {"agent": "agent3"})
            await until(lambda: joined(token, "agent2", "conference"), "the expert in the caller's conference")
            record = await placed
            await expert.finished(30)  # Asterisk ends the expert's leg when the caller leaves
            return token, consult, expert_token, conference, record

    token, consult, expert_token, conference, record = asyncio.run(scenario())
    _, context = api(asterisk, "GET", f"/context/{token}")

    assert consult[0] == 200 and conference[0] == 200, (consult, conference)
    assert expert_token == token
    steps = [(e["type"], e["data"].get("who") or e["data"].get("by") or e["data"].get("agent"), e["data"].get("room"))
             for e in call_events(context, record.uniqueid)
             if e["type"] in ("consult_started", "participant_joined", "participant_left")]
    assert steps[0] == ("consult_started", "agent3", "consultation")
    in_room: set[str] = set()
    most = 0
    order = []
    for kind, who, room in steps[1:]:
        if room != "conference":
            continue
        (in_room.add if kind == "participant_joined" else in_room.discard)(who)
        most = max(most, len(in_room))
        order.append((kind, who))
    assert most == 3  # caller, agent3 and the expert together
    left = [who for kind, who in order if kind == "participant_left"]
    assert left[0] == "agent3"  # agent3 left first; the caller stayed with the expert
    assert left.index("agent3") < left.index("caller")


def test_a_transfer_by_the_agent_api_to_a_named_agent_carries_the_reason_and_the_token(
        asterisk, start_controller, tmp_path):
    start_controller(IVR_JOURNEY_SQLITE_PATH=str(tmp_path / "journey.sqlite"),
                     IVR_CRM_SQLITE_PATH=str(tmp_path / "crm.sqlite"))

    async def scenario():
        async with phone(asterisk, "agent3", talk_s=20) as first, phone(asterisk, "agent1", talk_s=3) as second:
            placed = asyncio.create_task(place_call(asterisk, CallRequest(
                caller=IVAN, dnis="100", keys="0", delay_s=9, hold_s=40)))
            token = await first.answered(60)
            await until(lambda: api(asterisk, "GET", f"/context/{token}")[1].get("on_the_call"), "agent3 on the call")
            refused = await asyncio.to_thread(api, asterisk, "POST", f"/agent/{token}/transfer",
                                              {"agent": "agent2", "to": "agent:agent1"})
            moved = await asyncio.to_thread(api, asterisk, "POST", f"/agent/{token}/transfer",
                                            {"agent": "agent3", "to": "agent:agent1", "reason": "asked for Anna"})
            second_token = await second.answered(30)
            return token, refused, moved, second_token, await placed

    token, refused, moved, second_token, record = asyncio.run(scenario())
    _, context = api(asterisk, "GET", f"/context/{token}")

    assert refused[0] == 409 and "agent2 is not on this call" in refused[1]["message"]
    assert moved == (200, {"status": "transferred", "to": "agent1"})
    assert second_token == token
    steps = call_events(context, record.uniqueid)
    transfer = next(e for e in steps if e["type"] == "call_transferred")
    assert (transfer["data"]["by"], transfer["data"]["to"], transfer["data"]["via"], transfer["data"]["reason"]) == (
        "agent3", "agent1", "api", "asked for Anna")
    assert [e["data"]["agent"] for e in steps if e["type"] == "agent_connected"] == ["agent3", "agent1"]
