"""Declared actions against a real HTTP service (aiohttp, in the test's loop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.crm.declared_config import DeclaredActions, load_declared_actions
from ivr.crm.declared_http import DeclaredHttpActions
from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult

FILE = """version: 1
services:
  shop:
    base_url: {url}
    timeout_ms: 300
    secrets:
      Authorization: {{env: SHOP_TOKEN, format: "Bearer {{}}"}}
actions:
  order_status:
    service: shop
    path: /orders/{{order}}
    args: {{order: {{type: digits, min_length: 3}}}}
    result: {{state: status, eta: delivery.date}}
    failure: {{statuses: [404], error: error.message}}
    retry_safe: true
  book_visit:
    service: shop
    method: POST
    path: /visits
    needs_customer: true
    args: {{office: text}}
    result: {{ticket: ticket}}
  card_block:
    service: shop
    method: POST
    path: /cards/{{card}}/block
    args: {{card: digits}}
    ok: done
"""
ANNA = CallerContext(customer={"id": "C-1", "number": "+79991234567"}, caller={"number": "+79991234567"})
NOBODY = CallerContext(caller={"number": "+79990000000"})


class Shop:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Mapping[str, str], Any]] = []
        self.fail_next = 0
        self.delay_s = 0.0
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.seen.append((request.method, request.path, dict(request.headers), body))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_next:
            self.fail_next -= 1
            return web.json_response({"error": "busy"}, status=503)
        if request.path == "/orders/123":
            return web.json_response({"status": "shipped", "delivery": {"date": "2026-12-08"}})
        if request.path.startswith("/orders/"):
            return web.json_response({"error": {"message": "No such order."}}, status=404)
        if request.path == "/visits":
            return web.json_response({"ticket": "V-1"}, status=201)
        if request.path.endswith("/block"):
            return web.json_response({"done": False, "error": "card already blocked"})
        return web.json_response({}, status=400)


class Inner:
    def __init__(self) -> None:
        self.names: list[str] = []

    async def run(self, name: str, args: Mapping[str, Any], context: CallerContext,
                  *, interaction: str) -> ActionResult:
        self.names.append(name)
        return ActionResult(name, True, {"balance": 1})


@pytest.fixture
async def shop() -> AsyncIterator[tuple[Shop, str]]:
    service = Shop()
    server = TestServer(service.app, host="127.0.0.1", port=0)
    await server.start_server()
    yield service, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def actions(shop: tuple[Shop, str], tmp_path: Path) -> AsyncIterator[DeclaredHttpActions]:
    path = tmp_path / "actions.yaml"
    path.write_text(FILE.format(url=shop[1]))
    declared: DeclaredActions = load_declared_actions(path)
    runner = DeclaredHttpActions(declared, Inner(), env={"SHOP_TOKEN": "s3cret"})
    yield runner
    await runner.aclose()


async def test_a_found_order_fills_result_from_the_declared_paths(actions, shop) -> None:
    result = await actions.run("order_status", {"order": "123"}, ANNA, interaction="call-1")

    assert result.ok and dict(result.data) == {"state": "shipped", "eta": "2026-12-08", "http_status": 200}
    method, path, headers, _ = shop[0].seen[0]
    assert (method, path, headers["Authorization"]) == ("GET", "/orders/123", "Bearer s3cret")
    assert headers["Idempotency-Key"].startswith("call-1:order_status:")


async def test_a_declared_refusal_fails_with_the_services_own_words(actions) -> None:
    result = await actions.run("order_status", {"order": "999"}, ANNA, interaction="call-1")

    assert not result.ok
    assert (result.data["reason"], result.data["error"], result.data["http_status"]) == (
        "refused", "No such order.", 404)


async def test_an_argument_of_the_wrong_type_is_never_sent(actions, shop) -> None:
    result = await actions.run("order_status", {"order": "12a"}, ANNA, interaction="call-1")

    assert (result.ok, result.data["reason"]) == (False, "invalid")
    assert shop[0].seen == []


async def test_a_slow_service_is_a_timeout_within_the_declared_time(actions, shop) -> None:
    shop[0].delay_s = 2.0

    started = asyncio.get_running_loop().time()
    result = await actions.run("order_status", {"order": "123"}, ANNA, interaction="call-1")

    assert (result.ok, result.data["reason"]) == (False, "timeout")
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_a_retry_safe_action_is_tried_again_after_a_server_error(actions, shop) -> None:
    shop[0].fail_next = 1

    result = await actions.run("order_status", {"order": "123"}, ANNA, interaction="call-1")

    assert result.ok and len(shop[0].seen) == 2
    assert shop[0].seen[0][2]["Idempotency-Key"] == shop[0].seen[1][2]["Idempotency-Key"]


async def test_an_action_that_is_not_retry_safe_is_sent_once(actions, shop) -> None:
    shop[0].fail_next = 1

    result = await actions.run("book_visit", {"office": "main"}, ANNA, interaction="call-1")

    assert (result.ok, result.data["reason"], len(shop[0].seen)) == (False, "unavailable", 1)


async def test_a_post_sends_the_args_and_the_customer_as_json(actions, shop) -> None:
    result = await actions.run("book_visit", {"office": "main"}, ANNA, interaction="call-1")

    assert result.ok and result.data["ticket"] == "V-1"
    assert shop[0].seen[0][3] == {"office": "main", "customer_id": "C-1"}


async def test_an_action_for_customers_refuses_an_unknown_caller_without_asking(actions, shop) -> None:
    result = await actions.run("book_visit", {"office": "main"}, NOBODY, interaction="call-1")

    assert (result.ok, result.data["reason"], shop[0].seen) == (False, "not_identified", [])


async def test_an_ok_field_that_is_false_is_a_refusal(actions) -> None:
    result = await actions.run("card_block", {"card": "4242"}, ANNA, interaction="call-1")

    assert (result.ok, result.data["reason"], result.data["error"]) == (False, "refused", "card already blocked")


async def test_a_service_that_keeps_failing_is_not_asked_until_its_breaker_closes(actions, shop) -> None:
    shop[0].fail_next = 100
    for _ in range(5):
        await actions.run("order_status", {"order": "123"}, ANNA, interaction="call-1")
    asked = len(shop[0].seen)

    result = await actions.run("order_status", {"order": "123"}, ANNA, interaction="call-1")

    assert (result.data["reason"], len(shop[0].seen)) == ("unavailable", asked)
    assert "circuit open" in result.data["error"]


async def test_a_service_that_is_down_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "actions.yaml"
    path.write_text(FILE.format(url="http://127.0.0.1:9"))
    runner = DeclaredHttpActions(load_declared_actions(path), Inner(), env={})
    try:
        result = await runner.run("order_status", {"order": "123"}, ANNA, interaction="call-1")
    finally:
        await runner.aclose()

    assert (result.ok, result.data["reason"]) == (False, "unavailable")


async def test_other_names_go_to_the_built_in_actions(actions) -> None:
    result = await actions.run("balance", {}, ANNA, interaction="call-1")

    assert result.ok and actions.inner.names == ["balance"]
