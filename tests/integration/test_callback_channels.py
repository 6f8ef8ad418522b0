"""Callbacks beyond the happy call, on the real Asterisk and a real Kannel.

A customer who does not answer is rung per the policy (attempts, spacing), then told by SMS
through Kannel that we tried, and never rung again. Callbacks asked for by USSD (through the
gateway's HTTP endpoint) and by an SMS keyword in Russian (through Kannel) take their places
in request order, are confirmed by SMS, and reach the agent with the channel they came from.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.composition import load_sms_settings
from ivr.harness.agent_phone import AgentPhone
from ivr.harness.calls import CallRequest, place_call
from ivr.runtime.kannel import KannelRuntime
from ivr.settings import Settings
from ivr.sms.config import KannelConfig
from tests.integration.kannel_support import SmsPhones, mo, require_kannel
from tests.integration.test_callbacks import TRUNK_PEER_PORT, context, hang_up_places, place_ids, policy, until_entries

pytestmark = pytest.mark.asterisk
MARIA = "+79991255700"  # demo customer, English, support queue
OLGA = "+79993119007"  # demo customer, Russian, support queue
BOOKING = "0WWWW1WWWW1"  # the operator; the callback offer: 1; the number read back: 1
BOOKED_EN = "Nova Telecom will call you back when your turn comes; your place in the queue is kept."


@pytest.fixture(scope="module")
def serve_kannel(asterisk: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KannelConfig]:
    """Kannel as `ivr kannel up` runs it beside the controller: sms.yaml's ports, the
    controller's HTTP address as its get-url."""
    require_kannel()
    kannel = load_sms_settings(asterisk).kannel
    runtime = KannelRuntime(asterisk, kannel, state_dir=tmp_path_factory.mktemp("kannel"))
    runtime.up()
    try:
        yield kannel
    finally:
        runtime.down()


@pytest.fixture(autouse=True)
def no_places_left(asterisk: Settings) -> Iterator[None]:
    """A test that leaves a place behind (a failure halfway) must not hand it to a later test's agent."""
    yield
    asyncio.run(hang_up_places(asterisk))


def state_env(tmp_path: Path, callbacks: str) -> dict[str, str]:
    return {"IVR_JOURNEY_SQLITE_PATH": str(tmp_path / "journey.sqlite"),
            "IVR_CRM_SQLITE_PATH": str(tmp_path / "crm.sqlite"),
            "IVR_ROUTING_CALLBACKS": policy(tmp_path, callbacks)}


def ussd(settings: Settings, session: str, number: str, text: str) -> str:
    body = urllib.parse.urlencode({"sessionId": session, "serviceCode": "*111#", "phoneNumber": number,
                                   "networkCode": "25001", "text": text}).encode()
    req = urllib.request.Request(f"http://{settings.http.host}:{settings.http.port}/ussd", data=body, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


def test_a_customer_who_does_not_answer_is_rung_per_policy_then_told_by_sms_and_never_again(
        asterisk, start_controller, serve_kannel, tmp_path):
    start_controller(**state_env(tmp_path, "defaults:\n  offer_after_s: 0\n  attempts: 2\n"
                                           "  retry_after_s: 5\n  ring_s: 6\n"))
    sms = load_sms_settings(asterisk)

    async def scenario():
        async with SmsPhones(serve_kannel.fake_smsc_port) as phones:
            await place_call(asterisk, CallRequest(caller=MARIA, keys=BOOKING, delay_s=9, hold_s=12))
            await until_entries(asterisk, "support", 1)
            async with AgentPhone("customer", "", f"127.0.0.1:{asterisk.sip.port}", register=False,
                                  port=TRUNK_PEER_PORT, answer=False, calls=3, ring_timeout_s=120) as customer, \
                    AgentPhone("agent1", asterisk.sip.agent_password, f"127.0.0.1:{asterisk.sip.port}",
                               calls=3, talk_s=30, ring_timeout_s=120) as agent:
                rung = await customer.rung(2, timeout=120)
                texts = await phones.to(MARIA, 2, timeout=30)
                await asyncio.sleep(12)  # past retry_after_s twice over: a third ring would have come
                tokens = [token for _, token in await agent.callers(2, timeout=5)]
                return rung, texts, customer._read().count("RINGING"), tokens

    rung, texts, rings, tokens = asyncio.run(scenario())

    assert len(rung) == 2 and all("100" in caller for caller in rung)  # the service number calling
    assert rings == 2, "a failed callback is never dialled again"
    booked, missed = texts
    assert booked.text == BOOKED_EN
    assert missed.text == sms.notifications["callback_missed"].text.sources["en"]
    journey = context(asterisk, tokens[-1])["journey"]
    attempts = [(e["data"]["attempt"], e["data"]["outcome"]) for e in reversed(journey)
                if e["type"] == "callback_attempted"]  # the journey lists the newest first
    assert attempts == [(1, "ringing"), (1, "NOANSWER"), (2, "ringing"), (2, "NOANSWER")]
    finished = [e["data"] for e in journey if e["type"] == "callback_finished"]
    assert [f["outcome"] for f in finished] == ["failed"]


def test_callbacks_asked_for_by_ussd_and_by_sms_take_their_places_in_order_and_show_their_channel(
        asterisk, start_controller, serve_kannel, tmp_path):
    start_controller(**state_env(tmp_path, "defaults:\n  offer_after_s: 0\n  ring_s: 20\n"))

    async def scenario():
        async with SmsPhones(serve_kannel.fake_smsc_port, [mo(OLGA, "ПЕРЕЗВОНИТЕ")]) as phones:
            (reply,) = await phones.to(OLGA, 1, timeout=30)
            await until_entries(asterisk, "support", 1)
            menu = await asyncio.to_thread(ussd, asterisk, "ATUid_cb_1", MARIA, "")
            booked = await asyncio.to_thread(ussd, asterisk, "ATUid_cb_1", MARIA, "7")
            places = await until_entries(asterisk, "support", 2)
            (confirmation,) = await phones.to(MARIA, 1, timeout=30)
        # Each call ends with the customer hanging up: an agent who hung up first, during the
        # whisper (about 5 s), would give the place up before the customer was rung.
        async with AgentPhone("customer", "", f"127.0.0.1:{asterisk.sip.port}", register=False,
                              port=TRUNK_PEER_PORT, calls=2, talk_s=2, ring_timeout_s=120) as customer, \
                AgentPhone("agent1", asterisk.sip.agent_password, f"127.0.0.1:{asterisk.sip.port}",
                           calls=2, talk_s=30, ring_timeout_s=120) as agent:
            answered = await agent.callers(2, timeout=120)
            await customer.callers(2, timeout=10)
        return menu, booked, reply, confirmation, places, answered

    menu, booked, reply, confirmation, places, answered = asyncio.run(scenario())

    assert "7" in menu and menu.startswith("CON ")
    assert booked.startswith("END ") and "SMS" in booked
    assert reply.text == "Мы перезвоним, когда подойдёт ваша очередь."
    assert confirmation.text == BOOKED_EN
    assert len(place_ids(places)) == 2
    requested = []
    for _, token in answered:
        journey = context(asterisk, token)["journey"]
        (asked,) = [e for e in journey if e["type"] == "callback_requested"]
        requested.append((asked["channel"], asked["data"]["number"]))
        assert [e["data"]["outcome"] for e in journey if e["type"] == "callback_finished"] == ["completed"]
    assert requested == [("sms", OLGA), ("ussd", MARIA)]
