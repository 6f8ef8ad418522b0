"""AMI's queue, transfer and conference events become the call's journey (ivr.voice.agent_events)."""

from __future__ import annotations

import asyncio

import pytest

from ivr.journey.memory import MemoryJourney
from ivr.voice.agent_events import AgentEventRecorder, RoutedCall, owner_of

UID = "1700000000.5"
CUSTOMER = "C-1"


async def recorded(*events: dict[str, str]) -> tuple[AgentEventRecorder, list[tuple[str, dict]]]:
    journey = MemoryJourney()
    recorder = AgentEventRecorder(journey)
    recorder.track(UID, RoutedCall(CUSTOMER, "voice", "collections"))
    for event in events:
        recorder.on_event(event)
        await asyncio.sleep(0)
    await recorder.drain()
    stored = await journey.interaction_events(UID)
    return recorder, [(e.type, e.data) for e in stored]


def connect(agent: str, queue: str = "collections", uid: str = UID) -> dict[str, str]:
    return {"Event": "AgentConnect", "Uniqueid": uid, "Channel": "PJSIP/demo-trunk-00000001",
            "DestChannel": f"PJSIP/{agent}-0000000a", "Interface": f"PJSIP/{agent}", "Queue": queue,
            "HoldTime": "7"}


def conf(kind: str, uid: str, channel: str, room: str = f"ivr-{UID}") -> dict[str, str]:
    return {"Event": f"Confbridge{kind}", "Conference": room, "Uniqueid": uid, "Channel": channel}


async def test_an_agents_answer_and_completion_give_wait_and_talk_time() -> None:
    _, events = await recorded(connect("agent3"), {"Event": "AgentComplete", "Uniqueid": UID, "Queue": "collections",
                                                   "Interface": "PJSIP/agent3", "HoldTime": "7", "TalkTime": "95",
                                                   "Reason": "agent"})

    assert events == [("agent_connected", {"agent": "agent3", "queue": "collections", "hold_s": 7}),
                      ("agent_completed", {"agent": "agent3", "queue": "collections", "hold_s": 7, "talk_s": 95,
                                           "reason": "agent"})]


@pytest.mark.parametrize(("leg", "recorded_as_answer"), [("direct", True), ("number", True), ("queue", False)])
async def test_a_dial_answer_counts_only_for_a_leg_no_queue_reports(leg, recorded_as_answer) -> None:
    _, events = await recorded({"Event": "DialEnd", "Uniqueid": UID, "DialStatus": "ANSWER",
                                "DestChannel": "PJSIP/agent1-00000002",
                                "DestChanVariable": f"IVR_CONTEXT_TOKEN=abc\nIVR_LEG={leg}"})

    assert bool(events) == recorded_as_answer


async def test_a_refer_from_the_phone_is_a_transfer_by_that_agent() -> None:
    recorder, events = await recorded(connect("agent3"), {
        "Event": "BlindTransfer", "Result": "Success", "TransfererChannel": "PJSIP/agent3-0000000a",
        "TransfereeUniqueid": UID, "Extension": "experts", "Context": "ivr-transfer"})

    assert events[-1] == ("call_transferred", {"by": "agent3", "to": "experts", "to_kind": "name",
                                               "mode": "blind", "reason": "", "via": "phone"})
    live = recorder.live(UID)
    assert live is not None and live.agents == {}


async def test_a_transfer_the_api_asked_for_carries_its_reason() -> None:
    journey = MemoryJourney()
    recorder = AgentEventRecorder(journey)
    recorder.track(UID, RoutedCall(CUSTOMER, "voice", "collections"))
    recorder.on_event(connect("agent3"))
    recorder.remember_transfer(UID, "tariff dispute", "api", "number")
    recorder.on_event({"Event": "BlindTransfer", "Result": "Success", "TransfererChannel": "PJSIP/agent3-0000000a",
                       "TransfereeUniqueid": UID, "Extension": "+79990001122"})
    await recorder.drain()

    [*_, transfer] = await journey.interaction_events(UID)
    assert (transfer.data["reason"], transfer.data["via"], transfer.data["to_kind"]) == ("tariff dispute", "api",
                                                                                          "number")


async def test_conference_members_are_named_caller_agent_and_expert() -> None:
    _, events = await recorded(
        connect("agent3"),
        connect("agent2", "experts", uid=f"{UID}-e1b"),  # the expert's phone answered the consultation leg
        conf("Join", UID, "PJSIP/demo-trunk-00000001"),
        conf("Join", "1700000000.9", "PJSIP/agent3-0000000a", room=f"ivr-{UID}-consult"),
        conf("Join", f"{UID}-e1a", "Local/experts@ivr-expert-dial-00000001;1", room=f"ivr-{UID}-consult"),
        conf("Leave", "1700000000.9", "PJSIP/agent3-0000000a"))

    people = [(kind, d["who"], d["role"], d["room"]) for kind, d in events if kind.startswith("participant")]
    assert people == [("participant_joined", "caller", "caller", "conference"),
                      ("participant_joined", "agent3", "agent", "consultation"),
                      ("participant_joined", "agent2", "expert", "consultation"),
                      ("participant_left", "agent3", "agent", "conference")]


async def test_the_live_call_knows_each_agents_channel_until_the_caller_hangs_up() -> None:
    recorder, _ = await recorded(connect("agent3"))
    live = recorder.live(UID)
    assert live is not None and (live.channel, live.agents) == ("PJSIP/demo-trunk-00000001",
                                                               {"agent3": "PJSIP/agent3-0000000a"})

    recorder.on_event({"Event": "Hangup", "Uniqueid": UID})

    assert recorder.live(UID) is None


async def test_events_of_calls_routed_elsewhere_are_ignored() -> None:
    _, events = await recorded(connect("agent1", uid="1700000000.99"), conf("Join", "x", "PJSIP/a", room="other"))

    assert events == []


@pytest.mark.parametrize(("name", "owner"), [
    (f"ivr-{UID}", UID), (f"ivr-{UID}-consult", UID), (f"{UID}-e2a", UID), (f"{UID}-e12b", UID), (UID, UID),
])
def test_rooms_and_expert_legs_name_the_call_they_belong_to(name, owner) -> None:
    assert owner_of(name) == owner


async def test_an_expert_whose_leg_reaches_the_room_before_the_answer_event_is_still_named() -> None:
    _, events = await recorded(
        connect("agent3"),
        conf("Join", f"{UID}-e1a", "Local/experts@ivr-expert-dial-00000001;1", room=f"ivr-{UID}-consult"),
        connect("agent2", "experts", uid=f"{UID}-e1b"))

    joins = [(d["who"], d["role"]) for kind, d in events if kind == "participant_joined"]
    assert joins == [("agent2", "expert")]


async def test_an_expert_dialled_directly_is_named_by_the_dial_answer() -> None:
    _, events = await recorded(
        connect("agent3"),
        {"Event": "DialEnd", "Uniqueid": f"{UID}-e1b", "DialStatus": "ANSWER", "DestChannel": "PJSIP/agent1-0000000c",
         "DestChanVariable": "IVR_LEG=direct"},
        conf("Join", f"{UID}-e1a", "Local/agent1@ivr-expert-dial-00000001;1", room=f"ivr-{UID}-consult"))

    assert [(d["who"], d["role"]) for kind, d in events if kind == "participant_joined"] == [("agent1", "expert")]
