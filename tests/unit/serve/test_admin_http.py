"""The controller's admin endpoints: notify through the controller that meters it; the admin key, always."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.journey.kpi import KpiAccumulator, Kpis
from ivr.journey.memory import MemoryJourney
from ivr.journey.metered import MeteredJourney
from ivr.live.reload import ReloadResult
from ivr.serve.http_app import AdminAccess, build_app
from ivr.sms.service import SmsService
from tests.unit.sms.conftest import ANNA, RecordingSender

Client = TestClient[web.Request, web.Application]
KEY = "admin-key-for-the-tests-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def admin(service: SmsService, sms_journey: MemoryJourney,
                sender: RecordingSender) -> AsyncIterator[tuple[Client, KpiAccumulator]]:
    live = KpiAccumulator()
    metered = SmsService(service.config, service.lookup, service.actions, MeteredJourney(sms_journey, live),
                         sender=sender, clock=service.clock)

    async def reload() -> ReloadResult:
        return ReloadResult(True, "v1", 1)

    app = build_app(lambda: {}, reload, sms=metered, admin=AdminAccess(KEY))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0), headers=AUTH) as client:
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


async def reloaded() -> ReloadResult:
    return ReloadResult(True, "v1", 1)


@pytest.fixture
async def bare() -> AsyncIterator[Client]:
    """The admin side with no key sent by default, metrics behind their own key (a non-loopback bind)."""
    app = build_app(lambda: {}, reloaded, admin=AdminAccess(KEY, "metrics-key-0123456789", metrics_open=False),
                    kpis=Kpis)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer wrong", f"Basic {KEY}", f"Bearer {KEY}x",
                                           "Bearer metrics-key-0123456789"])
async def test_admin_endpoints_refuse_a_missing_or_wrong_key_with_one_answer(bare: Client,
                                                                            authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for path in ("/admin/reload", "/admin/notify"):
        response = await bare.post(path, headers=headers, json={})
        assert response.status == 401 and (await response.json())["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_admin_reload_runs_with_the_admin_key_even_from_loopback_only_with_it(bare: Client) -> None:
    response = await bare.post("/admin/reload", headers=AUTH)
    assert response.status == 200 and (await response.json())["version"] == "v1"


@pytest.mark.parametrize(("authorization", "status"), [(None, 401), ("Bearer wrong", 401),
                                                       ("Bearer metrics-key-0123456789", 200), (f"Bearer {KEY}", 401)])
async def test_metrics_beyond_loopback_need_the_metrics_key(bare: Client, authorization: str | None,
                                                            status: int) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await bare.get("/metrics", headers=headers)
    assert response.status == status


async def test_metrics_on_a_loopback_bind_need_no_key() -> None:
    app = build_app(lambda: {}, reloaded, admin=AdminAccess(KEY), kpis=Kpis)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        assert (await client.get("/metrics")).status == 200


async def test_metrics_fall_back_to_the_admin_key_when_they_have_none() -> None:
    app = build_app(lambda: {}, reloaded, admin=AdminAccess(KEY, metrics_open=False), kpis=Kpis)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers=AUTH)).status == 200


async def test_a_burst_of_wrong_admin_keys_locks_the_address_out_even_for_the_right_key(bare: Client) -> None:
    for _ in range(20):
        assert (await bare.post("/admin/reload", headers={"Authorization": "Bearer guess"})).status == 401
    response = await bare.post("/admin/reload", headers=AUTH)
    assert response.status == 429 and int(response.headers["Retry-After"]) > 0
