"""Whatever reaches the controller's HTTP listener, the answer is never a 500 and never a traceback.

The app ``ivr serve`` runs (:func:`ivr.serve.app.controller_http_app`) over the real
composition: USSD, SMS and delivery reports, the agent API and screen pop, the context API,
admin, metrics, health and the demo back end. Requests are fuzzed on every axis, with the
right keys and a real token often enough to get past authentication into the handlers.
Kannel is not running here, so ``/admin/notify`` may answer 502 (its downstream); nothing
else may answer 5xx.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from aiohttp import ClientTimeout
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.agent.ports import CallControlError
from ivr.composition import Controller
from ivr.journey.tokens import ContextClaim
from ivr.live.reload import ReloadResult
from ivr.refusals import RefusalGuard
from ivr.serve.app import controller_http_app
from ivr.settings import Settings
from tests.wire.fuzz_support import Tracebacks, composed

CLAIM = ContextClaim("C-100231", "call-1", "support", 0, "default", "voice", 0.0)
FRESH_TOKEN = "FRESH-TOKEN"
DOWNSTREAM_5XX = {("/admin/notify", 502)}  # smsbox is not running in this test


class NoAsterisk:
    """The agent desk's call control with no Asterisk behind it: every request is a clean refusal."""

    async def transfer(self, interaction: str, agent: str, to: str, reason: str, kind: str = "queue") -> None:
        raise CallControlError("no Asterisk in this test")

    async def consult(self, interaction: str, agent: str, to: str) -> str:
        raise CallControlError("no Asterisk in this test")

    async def conference(self, interaction: str, agent: str) -> None:
        raise CallControlError("no Asterisk in this test")


@pytest.fixture(scope="module")
def parts(fuzz_loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Settings, Controller, str]]:
    configured, controller = composed(fuzz_loop, tmp_path_factory.mktemp("http-fuzz"))
    yield configured, controller, FRESH_TOKEN
    fuzz_loop.run_until_complete(controller.close())


def routes(settings: Settings) -> list[tuple[str, str]]:
    return [("GET", "/healthz"), ("GET", "/metrics"), ("POST", "/admin/reload"), ("POST", "/admin/notify"),
            ("GET", "/context/{token}"), ("POST", "/context/{token}/revoke"), ("GET", "/agent/{token}"),
            ("GET", "/agent/{token}/live"), ("POST", "/agent/{token}/note"), ("POST", "/agent/{token}/transfer"),
            ("POST", "/agent/{token}/consult"), ("POST", "/agent/{token}/conference"),
            ("POST", "/context/events"), ("GET", "/context/customers/{customer}/journey"),
            ("GET", "/context/numbers/{number}/journey"), ("GET", "/context/staff/audit"),
            ("GET", "/sms/kannel"), ("GET", "/sms/dlr"), ("POST", "/ussd"), ("POST", "/ussd/events"),
            ("GET", "/demo/orders/{order}"), ("POST", "/demo/visits"), ("GET", "/{anything}")]


hostile = st.one_of(st.text(max_size=60), st.sampled_from(["", "x" * 3000, "\x00", "../../etc/passwd", "%00",
                                                             "C-100231", "+79991234567", "12345", "<script>"]))
segment = hostile.map(lambda s: quote(s, safe="") or "x")
json_body = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | hostile,
                         lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile, inner, max_size=4),
                         max_leaves=12)
shaped = st.fixed_dictionaries({}, optional={
    "to": st.sampled_from(["+79991234567", "", "nobody"]) | hostile, "template": st.sampled_from(["low_balance"]) | hostile,
    "vars": json_body, "text": hostile, "to_queue": hostile, "kind": hostile, "reason": hostile, "wrapup": hostile,
    "agent": hostile, "msisdn": hostile, "sessionId": hostile, "input": hostile, "type": hostile, "id": hostile,
    "channel": st.sampled_from(["web", "app", "sms"]) | hostile, "customer": hostile, "at": json_body})
bodies = st.one_of(st.none(), st.binary(max_size=300), json_body.map(json.dumps), shaped.map(json.dumps))


def header_value(text: str) -> str:
    """What HTTP lets a header hold (the client refuses the rest): Latin-1, no control characters."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", text.encode("latin-1", "replace").decode("latin-1"))[:200]


def often(good: str, other: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``good`` four times in five, else anything ``other`` draws."""
    return st.integers(0, 4).flatmap(lambda n: other if n == 0 else st.just(good))


@st.composite
def requests(draw: st.DrawFn, settings_: Settings, token: str) -> tuple[str, str, dict[str, str], bytes | None]:
    method, template = draw(st.sampled_from(routes(settings_)))
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    path = template
    for name in ("token", "customer", "number", "order", "anything"):
        path = path.replace("{" + name + "}", draw(often(token, segment)) if name == "token" else draw(segment))
    if path.startswith("/sms/kannel"):
        pairs = {"from": draw(often("+79991234567", hostile)), "to": draw(often("1000", hostile)),
                 "text": draw(st.sampled_from(["BAL", "HELP", "ROAM ON", "ORDER 12345", "СТОП"]) | hostile),
                 "id": draw(hostile), "coding": draw(often("0", hostile))}
        return method, path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs.items()), {}, None
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}"
                     for k, v in draw(st.lists(st.tuples(st.sampled_from(["key", "user", "since", "from", "to", "text",
                                                                          "id", "ref", "status"]) | hostile, hostile),
                                               max_size=4)))
    headers: dict[str, str] = {}
    if draw(st.integers(0, 3)):  # mostly the right keys: past authentication, into the handlers
        headers["X-API-Key"] = draw(often(settings_.agent_api.key, hostile.map(header_value)))
    if draw(st.booleans()):
        headers["Authorization"] = draw(often(f"Bearer {settings_.admin.key}", st.sampled_from(["Bearer ", "Basic x"])
                                              | hostile.map(lambda s: "Bearer " + header_value(s))))
    for name in ("X-IVR-User", "X-IVR-Client", "X-IVR-Timestamp", "X-IVR-Signature", "Content-Type", "Last-Event-ID"):
        if draw(st.integers(0, 3)) == 0:
            headers[name] = header_value(draw(hostile))
    body = draw(bodies)
    return method, path + (f"?{query}" if query else ""), headers, body if isinstance(body, bytes) else (
        body.encode() if isinstance(body, str) else None)


def test_no_request_gets_a_500_or_a_traceback(fuzz_loop: asyncio.AbstractEventLoop,
                                              parts: tuple[Settings, Controller, str]) -> None:
    configured, controller, token = parts

    async def reloaded() -> ReloadResult:
        return ReloadResult(True, "v1", 1)

    async def start() -> TestClient:  # type: ignore[type-arg]
        app = controller_http_app(configured, controller, lambda: {"live_calls": 0}, reloaded, NoAsterisk(),
                                  refusals=RefusalGuard(failures=10**9, floor_s=0))  # no lockout: reach every path
        client = TestClient(TestServer(app, host="127.0.0.1", port=0), timeout=ClientTimeout(total=10))
        await client.start_server()
        return client

    client = fuzz_loop.run_until_complete(start())
    handler = Tracebacks()
    logging.getLogger().addHandler(handler)
    try:
        @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
        @given(request=requests(configured, token))
        def one(request: tuple[str, str, dict[str, str], bytes | None]) -> None:
            method, path, headers, body = request
            if FRESH_TOKEN in path:  # a token of its own: an earlier example may have revoked the last one
                path = path.replace(FRESH_TOKEN, fuzz_loop.run_until_complete(controller.tokens.issue(CLAIM)))

            async def send() -> int:
                resp = await client.request(method, path, headers=headers, data=body, allow_redirects=False)
                status = resp.status
                resp.close()  # a live page streams until its token expires: the headers are the answer
                return status

            status = fuzz_loop.run_until_complete(send())
            assert not handler.records, f"{method} {path}: {handler.records[0].getMessage()}"
            assert status < 500 or (path.split("?")[0], status) in DOWNSTREAM_5XX, f"{method} {path} -> {status}"

        one()
    finally:
        logging.getLogger().removeHandler(handler)
        fuzz_loop.run_until_complete(client.close())
