"""Other systems plugged in, on the real Asterisk and real HTTP: events from the web site
reach the agent of the customer's next call, a declared HTTP action (order status) runs on
a call, on USSD and by SMS against a service this test starts, and staff reads by customer
are audited and refused without the role."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ivr.agent.signing import signed_headers
from ivr.agent.staff import AUDIT_KEY
from ivr.harness.agent_phone import AgentPhone
from ivr.harness.calls import CallRequest, place_call, place_call_sync
from ivr.journey.ports import StampedEvent
from ivr.journey.sqlite_store import SqliteJourneyStore
from tests.integration.http_service import ServiceThread

pytestmark = pytest.mark.asterisk
ANNA = "+79991234567"  # the demo VIP, customer C-100231
WEB_KEY = "test-website-key-0123456789"
HELPDESK_KEY = "test-helpdesk-key-0123456789"
SOCIAL_KEY = "test-social-key-0123456789"
ORDERS_TOKEN = "test-orders-token"
SLOW_ORDER = "99999"  # the test service answers it after the action's 1.5 s


class Orders:
    """The operator's order system, as the test sees it: what it was asked, with which headers."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.app = web.Application()
        self.app.router.add_get("/orders/{order}", self.order)

    async def order(self, request: web.Request) -> web.Response:
        number = request.match_info["order"]
        self.requests.append({"order": number, "authorization": request.headers.get("Authorization", ""),
                              "idempotency": request.headers.get("Idempotency-Key", "")})
        if number == SLOW_ORDER:
            await asyncio.sleep(3)
        if number != "24680":
            return web.json_response({"error": {"message": "No such order."}}, status=404)
        return web.json_response({"status": "out for delivery", "delivery": {"date": "today"}})


@pytest.fixture
def orders() -> Iterator[tuple[Orders, ServiceThread]]:
    service = Orders()
    with ServiceThread(service.app) as thread:
        yield service, thread


@pytest.fixture
def controller(asterisk, start_controller, tmp_path, orders):
    _, thread = orders
    start_controller(IVR_JOURNEY_SQLITE_PATH=str(tmp_path / "journey.sqlite"),
                     IVR_CRM_SQLITE_PATH=str(tmp_path / "crm.sqlite"),
                     IVR_ORDERS_URL=thread.url, IVR_ORDERS_TOKEN=ORDERS_TOKEN,
                     IVR_CONTEXT_KEY_WEBSITE=WEB_KEY, IVR_STAFF_KEY_HELPDESK=HELPDESK_KEY,
                     IVR_STAFF_KEY_SOCIAL=SOCIAL_KEY)
    return asterisk


def http(settings, method: str, path: str, *, data: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(f"http://{settings.http.host}:{settings.http.port}{path}", data=data,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, body = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def post_event(settings, event: dict[str, Any]) -> tuple[int, Any]:
    body = json.dumps(event).encode()
    return http(settings, "POST", "/context/events", data=body,
                headers=signed_headers("website", WEB_KEY, body, time.time()))


def test_a_web_event_appears_on_the_agent_page_of_the_customers_next_call(controller):
    stored = post_event(controller, {"id": "web-visit-1", "number": ANNA, "channel": "web", "kind": "page_viewed",
                                     "text": "Roaming in Turkey: prices", "link": "https://nova.example/roaming/tr",
                                     "topic": "roaming"})

    async def call_and_answer() -> str:
        async with AgentPhone("agent1", controller.sip.agent_password, f"127.0.0.1:{controller.sip.port}") as phone:
            placed = asyncio.create_task(place_call(controller, CallRequest(
                caller=ANNA, dnis="100", keys="0", delay_s=9, hold_s=12)))
            token = await phone.answered(60)
            await placed
            return token

    token = asyncio.run(call_and_answer())
    _, page = http(controller, "GET", f"/agent/{token}?key={controller.agent_api.key}")
    _, context = http(controller, "GET", f"/context/{token}", headers={"X-API-Key": controller.agent_api.key})

    assert stored[0] == 201
    web_events = [e for e in context["journey"] if e["channel"] == "web"]
    assert [(e["type"], e["data"]["text"]) for e in web_events] == [("page_viewed", "Roaming in Turkey: prices")]
    assert "Roaming in Turkey: prices" in page and "Web" in page


def test_the_same_event_id_sent_twice_is_stored_once(controller):
    event = {"id": "web-visit-2", "customer": "C-100231", "channel": "web", "kind": "page_viewed", "text": "Tariffs"}

    first, second = post_event(controller, event), post_event(controller, event)
    _, journey = http(controller, "GET", "/context/customers/C-100231/journey",
                      headers={"Authorization": f"Bearer {HELPDESK_KEY}"})

    assert (first[0], second[0], second[1]["status"]) == (201, 200, "duplicate")
    assert [e["data"]["event_id"] for e in journey["journey"] if e["channel"] == "web"] == ["web-visit-2"]


def test_a_declared_action_answers_the_order_status_on_a_call(controller, orders):
    service, _ = orders
    record = place_call_sync(controller, CallRequest(caller=ANNA, dnis="104", keys="1WWWW24680#", delay_s=6,
                                                     hold_s=10))

    assert record.variables["IVR_PATH"] == "orders>order_ask>order_check>order_said"
    assert [r["order"] for r in service.requests] == ["24680"]
    assert service.requests[0]["authorization"] == f"Bearer {ORDERS_TOKEN}"
    assert service.requests[0]["idempotency"].startswith(record.uniqueid + ":order_status:")


def test_a_declared_action_that_times_out_tells_the_caller_and_ends_cleanly(controller, orders):
    record = place_call_sync(controller, CallRequest(caller=ANNA, dnis="104", keys=f"1WWWW{SLOW_ORDER}#",
                                                     delay_s=6, hold_s=10))

    assert record.variables["IVR_PATH"] == "orders>order_ask>order_check>order_unavailable"
    assert record.variables["IVR_ROUTE_REASON"] == "order service unavailable"
    assert record.errors == []


def test_the_same_declared_action_runs_on_ussd_and_by_sms(controller, orders):
    service, _ = orders
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    ussd_steps = []
    for text in ("", "1", "1*24680"):
        ussd_steps.append(http(controller, "POST", "/ussd", headers=form, data=urllib.parse.urlencode({
            "sessionId": "ATUid_orders_1", "serviceCode": "*104#", "phoneNumber": ANNA, "networkCode": "25001",
            "text": text}).encode())[1])
    _, sms_found = http(controller, "GET", "/sms/kannel?" + urllib.parse.urlencode(
        {"from": ANNA, "to": "1000", "text": "ORDER 24680", "smsc": "fake", "id": "sms-order-1"}))
    _, sms_missing = http(controller, "GET", "/sms/kannel?" + urllib.parse.urlencode(
        {"from": ANNA, "to": "1000", "text": "ORDER 11111", "smsc": "fake", "id": "sms-order-2"}))

    assert ussd_steps[-1].startswith("END ") and "out for delivery" in ussd_steps[-1]
    assert "out for delivery" in sms_found and "We found no order 11111" in sms_missing
    assert [r["order"] for r in service.requests] == ["24680", "24680", "11111"]


def journey_of(path: Path, key: str) -> list[StampedEvent]:
    """``key``'s events as stored, newest first (read from the controller's journey file)."""
    async def read() -> list[StampedEvent]:
        store = await SqliteJourneyStore.open(path)
        try:
            return await store.recent(key)
        finally:
            await store.close()

    return asyncio.run(read())


def audit_trail(path: Path) -> list[dict[str, Any]]:
    return [e.data for e in journey_of(path, AUDIT_KEY)]


def test_a_helpdesk_read_is_audited_and_refused_without_the_role(controller, tmp_path):
    post_event(controller, {"id": "mail-1", "number": ANNA, "channel": "web", "kind": "form_submitted",
                            "text": "Complaint about roaming charges"})

    allowed = http(controller, "GET", "/context/customers/C-100231/journey",
                   headers={"Authorization": f"Bearer {HELPDESK_KEY}", "X-IVR-User": "maria.h"})
    refused = http(controller, "GET", "/context/customers/C-100231/journey",
                   headers={"Authorization": f"Bearer {SOCIAL_KEY}", "X-IVR-User": "sam.s"})
    no_key = http(controller, "GET", "/context/customers/C-100231/journey")
    trail = audit_trail(tmp_path / "journey.sqlite")

    assert allowed[0] == 200 and allowed[1]["customer_name"] == "Anna"
    assert "Complaint about roaming charges" in [e["data"].get("text") for e in allowed[1]["journey"]]
    assert (refused[0], no_key[0]) == (403, 401)
    assert [(a["staff"], a["user"], a["customer"], a["outcome"]) for a in trail][:2] == [
        ("social_media_team", "sam.s", "C-100231", "refused"), ("helpdesk", "maria.h", "C-100231", "allowed")]


def test_the_crm_offer_is_accepted_on_a_call_and_journaled(controller, tmp_path):
    elena = "+79995550011"  # the demo traveller: offer roaming-7d, roaming off
    record = place_call_sync(controller, CallRequest(caller=elena, dnis="100", keys="1", delay_s=7, hold_s=6))

    events = list(reversed(journey_of(tmp_path / "journey.sqlite", "C-555011")))  # oldest first
    path = [e.data["node"] for e in events if e.type == "node_entered"]
    assert record.answered and path[:5] == ["greeting", "offer", "offer_accepted", "offer_done", "main"]
    assert [e.data for e in events if e.type == "offer_answered"] == [
        {"node": "offer", "offer": "roaming-7d", "answer": "accepted"}]
    assert [(e.data["name"], e.data["ok"]) for e in events if e.type == "action_result"] == [("service_on", True)]
