"""The controller's admin endpoints: notify through the controller that meters it, this machine only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from ivr.journey.kpi import KpiAccumulator
from ivr.journey.memory import MemoryJourney
from ivr.journey.metered import MeteredJourney
from ivr.live.reload import ReloadResult
from ivr.serve.http_app import _from_this_machine, build_app
from ivr.sms.service import SmsService
from tests.unit.sms.conftest import ANNA, RecordingSender

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def admin(service: SmsService, sms_journey: MemoryJourney,
                sender: RecordingSender) -> AsyncIterator[tuple[Client, KpiAccumulator]]:
    live = KpiAccumulator()
    metered = SmsService(service.config, service.lookup, service.actions, MeteredJourney(sms_journey, live),
                         sender=sender, clock=service.clock)

    async def reload() -> ReloadResult:
        return ReloadResult(True, "v1", 1)

    app = build_app(lambda: {}, reload, sms=metered)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client, live


async def test_a_notification_sent_through_the_controller_is_counted_by_its_metrics(
        admin: tuple[Client, KpiAccumulator], sender: RecordingSender) -> None:
    client, live = admin
    response = await client.post("/admin/notify", json={"to": ANNA, "template": "low_balance", "vars": {}})
    body = await response.json()
    assert response.status == 200 and body["journey_key"] == "C-100231"
    assert len(sender.sent) == 1 and live.snapshot().interactions == {"sms": 1}


async def test_a_refused_notification_says_why(admin: tuple[Client, KpiAccumulator]) -> None:
    client, _ = admin
    response = await client.post("/admin/notify", json={"to": ANNA, "template": "no_such_template"})
    body = await response.json()
    assert response.status == 422 and body["error"] == "sms-notify-refused" and "no_such_template" in body["message"]


async def test_a_malformed_request_is_a_400(admin: tuple[Client, KpiAccumulator]) -> None:
    client, _ = admin
    response = await client.post("/admin/notify", data=b"not json")
    assert response.status == 400


@pytest.mark.parametrize(("peer", "allowed"), [("127.0.0.1", True), ("::1", True), ("10.0.0.5", False),
                                               ("203.0.113.9", False)])
def test_admin_endpoints_answer_this_machine_only(peer: str, allowed: bool) -> None:
    class Transport:
        def get_extra_info(self, name: str, default: object = None) -> object:
            return (peer, 40000) if name == "peername" else default

        def is_closing(self) -> bool:
            return False

    request = make_mocked_request("POST", "/admin/notify", transport=Transport())
    assert _from_this_machine(request) is allowed
