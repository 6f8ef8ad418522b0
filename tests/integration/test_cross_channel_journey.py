"""Context over channels, the heart of the product, in one test: a subscriber checks the
balance by USSD, sends "ROAM ON" by SMS, then calls and presses 0. The agent who answers
sees all three, in order, from the token the call carried."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request

import pytest

from ivr.harness.agent_phone import AgentPhone
from ivr.harness.calls import CallRequest, place_call

pytestmark = pytest.mark.asterisk
IVAN = "+79992088812"  # the demo debtor


def http(settings, method: str, path: str, *, data: bytes | None = None, headers: dict | None = None) -> str:
    req = urllib.request.Request(f"http://{settings.http.host}:{settings.http.port}{path}", data=data,
                                 method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


def test_agent_sees_ussd_then_sms_then_the_call_in_order(asterisk, start_controller, tmp_path):
    start_controller(IVR_JOURNEY_SQLITE_PATH=str(tmp_path / "journey.sqlite"),
                     IVR_CRM_SQLITE_PATH=str(tmp_path / "crm.sqlite"))

    ussd = http(asterisk, "POST", "/ussd", data=urllib.parse.urlencode({
        "sessionId": "ATUid_cross_1", "serviceCode": "*100#", "phoneNumber": IVAN, "networkCode": "25001",
        "text": ""}).encode(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    sms = http(asterisk, "GET", "/sms/kannel?" + urllib.parse.urlencode({
        "from": IVAN, "to": "1000", "text": "ROAM ON", "smsc": "fake", "id": "sms-cross-1"}))

    async def call_and_answer():
        async with AgentPhone("agent3", asterisk.sip.agent_password, f"127.0.0.1:{asterisk.sip.port}") as phone:
            placed = asyncio.create_task(place_call(asterisk, CallRequest(
                caller=IVAN, dnis="100", keys="0", delay_s=9, hold_s=15)))
            token = await phone.answered(60)
            return token, await placed

    token, record = asyncio.run(call_and_answer())
    context = json.loads(http(asterisk, "GET", f"/context/{token}", headers={"X-API-Key": asterisk.agent_api.key}))

    assert ussd.startswith("END ") and "1,250.00" in ussd
    assert sms  # the reply Kannel would send back
    assert record.queue is not None and record.queue.name == "collections"
    channels = [e["channel"] for e in context["journey"]]  # newest first
    assert {"voice", "sms", "ussd"} <= set(channels)
    first_seen = {ch: channels.index(ch) for ch in ("voice", "sms", "ussd")}
    assert first_seen["voice"] < first_seen["sms"] < first_seen["ussd"]
    voice = [e for e in context["journey"] if e["interaction"] == record.uniqueid]
    assert any(e["type"] == "key_pressed" and e["data"].get("key") == "0" for e in voice)
