"""Real SIPp calls from each demo customer's number: routed where config/routing.yaml says,
with the priority it says; the agent leg carries the context token; a dead CRM still gets
the caller to a person."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest
from aiohttp import web

from ivr.harness.agent_phone import AgentPhone
from ivr.harness.calls import CallRequest, place_call
from ivr.journey.sqlite_store import SqliteJourneyStore
from ivr.journey.tokens import TokenService

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def routed_controller(start_controller, tmp_path):
    """A controller with its own journey and CRM files, so earlier calls do not change routing."""
    journey = tmp_path / "journey.sqlite"
    ctl = start_controller(IVR_JOURNEY_SQLITE_PATH=str(journey), IVR_CRM_SQLITE_PATH=str(tmp_path / "crm.sqlite"))
    ctl.journey_path = journey
    return ctl


def call(settings, caller: str, keys: str = "0", **kw):
    return asyncio.run(place_call(settings, CallRequest(caller=caller, dnis="100", keys=keys,
                                                        delay_s=kw.pop("delay_s", 5), hold_s=kw.pop("hold_s", 6),
                                                        **kw)))


@pytest.mark.parametrize("caller, queue, priority, reason_part", [
    ("+7(999)1234567", "support", 10, "VIP customer: priority 10"),
    ("89992088812", "collections", 5, "collections: overdue 45 days, 1,250.00"),
    ("+79993119007", "support", 0, "caller asked for an operator"),
    ("+79990001122", "support", 0, "caller asked for an operator"),
])
def test_demo_number_lands_in_the_queue_the_rules_say(asterisk, routed_controller, caller, queue, priority,
                                                      reason_part):
    record = call(asterisk, caller)

    assert record.errors == []
    assert record.queue is not None and (record.queue.name, record.queue.priority) == (queue, priority)
    assert reason_part in record.variables["IVR_ROUTE_REASON"]
    assert record.variables["IVR_CONTEXT_TOKEN"]


def test_blacklisted_number_hears_the_announcement_and_never_reaches_an_agent(asterisk, routed_controller):
    record = call(asterisk, "+79996660013", hold_s=12)

    assert record.queue is None and record.agents_called == []
    assert record.variables["IVR_RESULT"] == "hangup"
    assert record.variables["IVR_ROUTE_REASON"] == "blacklisted number"


def test_personal_manager_is_tried_first_then_the_regional_queue(asterisk, routed_controller):
    record = call(asterisk, "+78124000518")

    assert record.variables["IVR_AGENT"] == "PJSIP/agent2"
    assert record.variables["IVR_AGENT_RESULT"] == "UNAVAILABLE"  # agent2 is not registered
    assert record.queue is not None and record.queue.name == "support-spb"


def test_returning_caller_is_offered_to_the_agent_of_the_last_call_first(asterisk, routed_controller):
    # Long enough for agent1 to ring out (15 s) should a phone be registered as agent1.
    record = call(asterisk, "8-999-125-57-00", hold_s=25)

    assert record.variables["IVR_AGENT"] == "PJSIP/agent1"
    assert "agent of the last call (agent1) first" in record.variables["IVR_ROUTE_REASON"]
    assert record.queue is not None and record.queue.name == "support"


def test_agent_leg_carries_the_token_and_it_resolves_to_this_calls_keys(asterisk, routed_controller):
    async def scenario():
        async with AgentPhone("agent1", asterisk.sip.agent_password, f"127.0.0.1:{asterisk.sip.port}") as phone:
            placed = asyncio.create_task(place_call(asterisk, CallRequest(
                caller="+79991234567", dnis="100", keys="0", delay_s=5, hold_s=15)))
            sip_token = await phone.answered(40)
            return sip_token, await placed

    sip_token, record = asyncio.run(scenario())

    assert sip_token and sip_token == record.variables["IVR_CONTEXT_TOKEN"]
    assert {"event": "AgentConnect", "interface": "PJSIP/agent1", "token": sip_token} in record.agent_events

    context = agent_api(asterisk, f"/context/{sip_token}")
    this_call = [e for e in context["journey"] if e["interaction"] == record.uniqueid]
    assert (context["customer_key"], context["queue"], context["priority"]) == ("C-100231", "support", 10)
    assert any(e["type"] == "key_pressed" and e["data"].get("key") == "0" for e in this_call)
    assert any(e["type"] == "route_decided" for e in this_call)
    assert this_call[0]["at"] >= this_call[-1]["at"]  # newest first
    assert 'ivr_agent_connects_total 1' in metrics(asterisk)


def agent_api(settings, path: str, key: str | None = None) -> dict:
    import json
    import urllib.request

    req = urllib.request.Request(f"http://{settings.http.host}:{settings.http.port}{path}",
                                 headers={"X-API-Key": key or settings.agent_api.key})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def metrics(settings) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://{settings.http.host}:{settings.http.port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def test_a_forged_token_gets_404_and_a_missing_key_401(asterisk, routed_controller):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as forged:
        agent_api(asterisk, "/context/AAAAAAAAAAAAAAAAAAAAAA.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(urllib.error.HTTPError) as no_key:
        agent_api(asterisk, "/context/whatever", key="wrong")

    assert (forged.value.code, no_key.value.code) == (404, 401)


class BrokenCrm:
    """A CRM that accepts the connection and then never answers (``hanging``), answers 200 with
    bytes that are no JSON (``garbage``), or streams a 200 MB JSON body (``huge``)."""

    def __init__(self, mode: str = "hanging") -> None:
        self.mode = mode
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> BrokenCrm:
        started = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()

            async def broken(request: web.Request) -> web.StreamResponse:
                if self.mode == "garbage":
                    return web.Response(body=b"<html>\x00\xff{\"name\": oops", content_type="application/json")
                if self.mode == "huge":
                    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
                    await resp.prepare(request)
                    await resp.write(b'{"id": "C-100231", "name": "')
                    chunk = b"A" * (1 << 20)
                    for _ in range(200):
                        await resp.write(chunk)
                    await resp.write(b'"}')
                    return resp
                await asyncio.sleep(3600)
                return web.Response()

            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", broken)
            runner = web.AppRunner(app)
            self._loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            started.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        started.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)


def http_crm_config(tmp_path: Path, port: int) -> Path:
    text = (REPO / "config/crm/http.example.yaml").read_text()
    target = tmp_path / "crm-http.yaml"
    target.write_text(text.replace("base_url: http://127.0.0.1:9090", f"base_url: http://127.0.0.1:{port}"))
    return target


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("crm", ["hanging", "down", "garbage", "huge"])
def test_caller_gets_the_generic_menu_and_a_person_when_the_crm_fails(asterisk, start_controller, tmp_path, crm):
    with BrokenCrm(crm) as broken:
        port = closed_port() if crm == "down" else broken.port
        journey = tmp_path / "journey.sqlite"
        start_controller(IVR_CRM_BACKEND="http", IVR_CRM_HTTP_CONFIG=str(http_crm_config(tmp_path, port)),
                         IVR_JOURNEY_SQLITE_PATH=str(journey))
        record = call(asterisk, "+79991234567", delay_s=3, hold_s=4)  # Anna, VIP: but the CRM cannot say so

    assert record.errors == []
    assert record.variables["IVR_PATH"].startswith("greeting_anonymous>main")  # the generic menu
    assert record.queue is not None and (record.queue.name, record.queue.priority) == ("support", 0)

    async def journey_events():
        store = await SqliteJourneyStore.open(journey)
        try:
            return await store.recent("+79991234567")
        finally:
            await store.close()

    unavailable = [e for e in asyncio.run(journey_events()) if e.type == "crm_unavailable"]
    assert len(unavailable) == 1
    assert unavailable[0].data["crm_ms"] < 1000


def test_unknown_caller_identified_by_account_and_pin_is_routed_as_that_customer(asterisk, routed_controller):
    record = call(asterisk, "+79990001122", keys="8WW100231#WW1234WWWW0", hold_s=8)

    assert "identify_ok" in record.variables["IVR_PATH"].split(">")
    assert record.queue is not None and (record.queue.name, record.queue.priority) == ("support", 10)

    async def claim_and_events():
        store = await SqliteJourneyStore.open(routed_controller.journey_path)
        try:
            claim = await TokenService(asterisk.tokens.secret.encode(), store).resolve(
                record.variables["IVR_CONTEXT_TOKEN"])
            return claim, await store.recent("C-100231"), await store.recent("+79990001122")
        finally:
            await store.close()

    claim, as_customer, as_number = asyncio.run(claim_and_events())
    assert claim.customer_key == "C-100231"
    assert any(e.type == "caller_identified" and e.data["by"] == "account" for e in as_customer)
    assert "1234" not in repr([e.data for e in as_customer + as_number])  # the PIN is stored nowhere
