"""The live agent page in a real browser: an agent has the screen pop of a call open, the
same customer dials *100# on their phone, and the USSD session appears on the page without
a reload. Real controller, real call through Asterisk to a SIPp agent phone, real
Chromium following the page's server-sent events.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import urllib.request

import pytest

from ivr.harness.agent_phone import AgentPhone
from ivr.harness.calls import CallRequest, place_call
from tests.integration.cdp import Browser

pytestmark = pytest.mark.asterisk
IVAN = "+79992088812"  # the demo debtor: 0 takes him to collections (agent3)
USSD_ROW = """(() => { const li = document.querySelector('#journey li[data-type="ussd_request"]');
                      return li ? li.textContent : ""; })()"""


def ussd(settings, session: str) -> str:
    body = urllib.parse.urlencode({"sessionId": session, "serviceCode": "*100#", "phoneNumber": IVAN,
                                   "networkCode": "25001", "text": ""}).encode()
    req = urllib.request.Request(f"http://{settings.http.host}:{settings.http.port}/ussd", data=body, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


def test_a_ussd_request_by_the_caller_appears_on_the_open_agent_page(asterisk, start_controller, tmp_path):
    start_controller(IVR_JOURNEY_SQLITE_PATH=str(tmp_path / "journey.sqlite"),
                     IVR_CRM_SQLITE_PATH=str(tmp_path / "crm.sqlite"))

    async def scenario():
        browser = Browser(tmp_path / "chromium-profile")
        async with AgentPhone("agent3", asterisk.sip.agent_password, f"127.0.0.1:{asterisk.sip.port}",
                              talk_s=20) as phone:
            placed = asyncio.create_task(place_call(asterisk, CallRequest(
                caller=IVAN, dnis="100", keys="0", delay_s=9, hold_s=30)))
            token = await phone.answered(60)
            try:
                await browser.open(f"http://{asterisk.http.host}:{asterisk.http.port}/agent/{token}"
                                   f"?key={asterisk.agent_api.key}")
                await browser.until("document.getElementById('live').textContent === 'live'")
                before = await browser.evaluate(USSD_ROW)
                answer = await asyncio.to_thread(ussd, asterisk, "ATUid_live_page_1")
                row = await browser.until(USSD_ROW)
                on_call = await browser.evaluate("document.getElementById('oncall').textContent")
            finally:
                await browser.close()
            await placed
            return before, answer, row, on_call

    before, answer, row, on_call = asyncio.run(scenario())

    assert before == ""  # the page was open before the session existed
    assert answer.startswith("END ")
    assert "USSD *100#" in row
    assert "agent3" in on_call
