"""A fake "Orbit CRM" (the fictional CRM of config/crm/http.example.yaml) on a real local HTTP server.

Each test starts its own aiohttp server on 127.0.0.1, port 0 (the OS picks a free
port), so these tests need no Asterisk and never touch the ports the platform uses.
The server's behaviour is a mode the test sets: healthy, hang, garbage, or 500s.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ivr.crm.http_config import HttpCrmConfig, load_http_config
from ivr.crm.http_directory import HttpDirectory

EXAMPLE = Path(__file__).resolve().parents[3] / "config/crm/http.example.yaml"

ANNA: dict[str, Any] = {
    "contact_id": "C-100231", "first_name": "Anna",
    "phones": {"mobile": "+79991234567"},
    "preferred_language": "ENG", "tier": "PLATINUM",
    "billing": {"account_no": "100231", "balance": {"amount": 15420.75, "currency": "RUB"},
                "overdue": {"amount": 0, "days": 0}},
    "plan": {"name": "Max"},
    "products": [{"code": "roaming", "active": True}, {"code": "voicemail", "active": False}],
    "account_manager": {"agent_id": "agent2"},
    "address": {"region": "Moscow"},
    "flags": {"do_not_connect": False},
}
PINS = {"100231": "1234"}
TOKEN = "test-token-not-a-secret"

Handler = Callable[[web.Request], Any]


@dataclass
class FakeCrm:
    """What the server does and what it saw. ``mode``: healthy | hang | 500 | a raw body (garbage)."""

    url: str = ""
    mode: str = "healthy"
    garbage: bytes = b""
    contacts: dict[str, dict[str, Any]] = field(default_factory=lambda: {"79991234567": copy.deepcopy(ANNA)})
    requests: list[web.Request] = field(default_factory=list)
    applied: dict[str, dict[str, Any]] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def count(self) -> int:
        return len(self.requests)


async def _misbehave(crm: FakeCrm) -> web.Response | None:
    if crm.mode == "hang":
        await crm.release.wait()  # until the test ends
        return web.Response(status=504)
    if crm.mode == "500":
        return web.Response(status=500, text="<html>Internal Server Error</html>", content_type="text/html")
    if crm.mode == "garbage":
        return web.Response(status=200, body=crm.garbage, content_type="application/json")
    return None


def build_app(crm: FakeCrm) -> web.Application:
    async def by_phone(request: web.Request) -> web.Response:
        crm.requests.append(request)
        if (bad := await _misbehave(crm)) is not None:
            return bad
        contact = crm.contacts.get(request.match_info["digits"])
        if contact is None:
            return web.json_response({"error": {"message": "no such contact"}}, status=404)
        return web.json_response({"data": {"contact": contact}})

    async def verify_pin(request: web.Request) -> web.Response:
        crm.requests.append(request)
        if (bad := await _misbehave(crm)) is not None:
            return bad
        body = await request.json()
        account = request.match_info["account"]
        if PINS.get(account) != body.get("pin") or body.get("account") != account:
            return web.json_response({"error": {"message": "no match"}}, status=404)
        contact = next(c for c in crm.contacts.values() if c["billing"]["account_no"] == account)
        return web.json_response({"data": {"contact": contact}})

    async def action(request: web.Request) -> web.Response:
        crm.requests.append(request)
        if (bad := await _misbehave(crm)) is not None:
            return bad
        key = request.headers.get("Idempotency-Key", "")
        if key in crm.applied:
            return web.json_response(crm.applied[key], headers={"Idempotent-Replayed": "true"})
        args = (await request.json())["args"]
        name = request.match_info["name"]
        if name == "service_on" and args.get("service") == "satellite":
            return web.json_response({"error": {"message": "satellite is not sold here"}}, status=422)
        reply = {"result": {"applied": True, "details": {"service": args.get("service"), "enabled": True}}}
        crm.applied[key] = reply
        return web.json_response(reply)

    app = web.Application()
    app.router.add_get("/api/v2/contacts/by-phone/{digits}", by_phone)
    app.router.add_post("/api/v2/accounts/{account}/verify-pin", verify_pin)
    app.router.add_post("/api/v2/contacts/{customer_id}/actions/{name}", action)
    return app


@pytest.fixture
async def fake_crm() -> AsyncIterator[FakeCrm]:
    crm = FakeCrm()
    runner = web.AppRunner(build_app(crm))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    crm.url = f"http://{host}:{port}"
    yield crm
    crm.release.set()
    await runner.cleanup()


@pytest.fixture
def config(fake_crm: FakeCrm) -> HttpCrmConfig:
    return dataclasses.replace(load_http_config(EXAMPLE), base_url=fake_crm.url)


@pytest.fixture
async def directory(config: HttpCrmConfig) -> AsyncIterator[HttpDirectory]:
    async with HttpDirectory(config, token=TOKEN) as directory:
        yield directory
