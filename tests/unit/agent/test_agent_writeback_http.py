"""The agent's write-back endpoints and the live page's event stream, over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.agent.desk import AgentDesk
from ivr.agent.http import mount_agent_api
from ivr.agent.wrapup import WrapupCodes
from ivr.journey.feed import JourneyFeed
from ivr.journey.kpi import KpiAccumulator
from ivr.journey.memory import MemoryJourney
from ivr.journey.metered import MeteredJourney
from ivr.journey.tokens import TokenService

from .conftest import API_KEY, CUSTOMER, SECRET, T0, TTL_S, FakeClock, claim, ev

Client = TestClient[web.Request, web.Application]
KEY = {"X-API-Key": API_KEY}
TOKENS = web.AppKey("tokens", TokenService)


class NoControl:
    async def transfer(self, interaction: str, agent: str, to: str, reason: str, kind: str = "queue") -> None:
        from ivr.errors import CallControlError
        raise CallControlError(f"{agent} is not on this call (on it: nobody)")

    async def consult(self, interaction: str, agent: str, to: str) -> str:
        raise NotImplementedError

    async def conference(self, interaction: str, agent: str) -> None:
        raise NotImplementedError


@pytest.fixture
def store(clock: FakeClock) -> MeteredJourney:
    return MeteredJourney(MemoryJourney(clock=clock), KpiAccumulator(), JourneyFeed())


@pytest.fixture
async def live_client(store: MeteredJourney, clock: FakeClock) -> AsyncIterator[Client]:
    tokens = TokenService(SECRET, store, ttl_s=TTL_S, clock=clock)
    app = web.Application()
    app[TOKENS] = tokens
    desk = AgentDesk(store, WrapupCodes(("resolved",)), control=NoControl(), queues={"experts"}, clock=clock)
    mount_agent_api(app, tokens, store, API_KEY, desk=desk, feed=store.feed, clock=clock)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client


async def token(client: Client) -> str:
    return await client.server.app[TOKENS].issue(claim())


async def post(client: Client, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    resp = await client.post(path, data=json.dumps(body) if not isinstance(body, bytes) else body,
                             headers=KEY if headers is None else headers)
    return resp.status, await resp.json()


async def events_of(resp, count: int, timeout: float = 2.0) -> list[tuple[str, dict]]:
    """The next ``count`` named server-sent events (comments and retry lines skipped)."""
    out: list[tuple[str, dict]] = []
    name, data = "", ""
    async with asyncio.timeout(timeout):
        while len(out) < count:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and name:
                out.append((name, json.loads(data)))
                name, data = "", ""
    return out


async def test_a_note_is_stored_and_shown_to_the_next_agent(live_client: Client, store: MeteredJourney) -> None:
    tok = await token(live_client)

    status, body = await post(live_client, f"/agent/{tok}/note", {"agent": "agent3", "text": "<b>VIP</b> said hi",
                                                                  "wrapup": "resolved"})

    assert status == 200 and body["status"] == "stored"
    page = await (await live_client.get(f"/agent/{tok}", params={"key": API_KEY})).text()
    assert "&lt;b&gt;VIP&lt;/b&gt; said hi" in page and "<b>VIP" not in page


@pytest.mark.parametrize(("body", "status"), [
    ({"agent": "agent3", "text": "hi", "wrapup": "sold"}, 422),
    ({"agent": "agent3", "text": "x" * 5000}, 422),
    (b"not json", 422),
    (b"[1, 2]", 422),
    (b"{" + b" " * 9000 + b"}", 422),
])
async def test_a_bad_note_is_refused_with_the_reason(live_client: Client, body, status) -> None:
    code, answer = await post(live_client, f"/agent/{await token(live_client)}/note", body)

    assert code == status and answer["error"] == "invalid"


async def test_write_back_needs_the_key_in_the_header_and_a_token_that_resolves(live_client: Client) -> None:
    tok = await token(live_client)

    assert (await post(live_client, f"/agent/{tok}/note", {"agent": "a", "text": "x"}, headers={}))[0] == 401
    assert (await post(live_client, "/agent/forged/note", {"agent": "a", "text": "x"}))[0] == 404


async def test_a_transfer_the_call_cannot_do_is_a_conflict_with_the_reason(live_client: Client) -> None:
    status, body = await post(live_client, f"/agent/{await token(live_client)}/transfer",
                              {"agent": "agent3", "to": "experts"})

    assert status == 409 and "not on this call" in body["message"]


async def test_the_open_page_receives_a_new_event_without_a_reload(live_client: Client, store: MeteredJourney) -> None:
    tok = await token(live_client)
    resp = await live_client.get(f"/agent/{tok}/live", params={"key": API_KEY, "since": str(T0)})
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert resp.headers["X-Accel-Buffering"] == "no" and resp.headers["Cache-Control"] == "no-store"

    await store.append(CUSTOMER, [ev(T0 + 1, "ussd_request", "ussd-9", "ussd", code="*100#", service="balance")])

    [(name, data)] = await events_of(resp, 1)
    assert name == "journey"
    assert (data["interaction"], data["summary"], data["css"]) == ("ussd-9", "checked balance by USSD *100#", "ussd")
    resp.close()


async def test_a_reconnecting_page_gets_what_was_stored_while_it_was_away(live_client: Client,
                                                                         store: MeteredJourney) -> None:
    tok = await token(live_client)
    await store.append(CUSTOMER, [ev(T0 + 1, "key_pressed", node="main", key="1"),
                                  ev(T0 + 2, "key_pressed", node="main", key="2")])

    resp = await live_client.get(f"/agent/{tok}/live", params={"key": API_KEY},
                                 headers={"Last-Event-ID": f"{T0 + 1:.6f}"})

    [(_, data)] = await events_of(resp, 1)
    assert data["summary"] == "pressed 2 in main"
    resp.close()


async def test_who_is_on_the_call_is_sent_again_when_it_changes(live_client: Client, store: MeteredJourney) -> None:
    tok = await token(live_client)
    resp = await live_client.get(f"/agent/{tok}/live", params={"key": API_KEY, "since": str(T0)})

    await store.append(CUSTOMER, [ev(T0 + 1, "agent_connected", agent="agent3", queue="collections")])
    seen = await events_of(resp, 2)
    await store.append(CUSTOMER, [ev(T0 + 2, "participant_joined", who="agent2", role="expert", room="conference")])
    seen += await events_of(resp, 2)

    people = [data for name, data in seen if name == "participants"]
    assert [[p["who"] for p in group] for group in people] == [["agent3"], ["agent3", "agent2"]]
    resp.close()


async def test_the_live_stream_refuses_a_wrong_key_and_an_unknown_token(live_client: Client) -> None:
    tok = await token(live_client)

    assert (await live_client.get(f"/agent/{tok}/live", params={"key": "wrong"})).status == 401
    assert (await live_client.get("/agent/nope/live", params={"key": API_KEY})).status == 404


async def test_the_page_carries_its_script_under_a_nonce_the_policy_names(live_client: Client) -> None:
    resp = await live_client.get(f"/agent/{await token(live_client)}", params={"key": API_KEY})
    page, policy = await resp.text(), resp.headers["Content-Security-Policy"]

    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in page and "connect-src 'self'" in policy
    assert "innerHTML" not in page


async def test_the_page_says_who_is_on_the_call_and_what_the_last_agent_did(live_client: Client,
                                                                          store: MeteredJourney) -> None:
    tok = await token(live_client)
    await store.append(CUSTOMER, [
        ev(T0 + 1, "agent_connected", agent="agent3", queue="collections"),
        ev(T0 + 2, "call_transferred", by="agent3", to="experts", to_kind="queue", reason="tariff dispute"),
        ev(T0 + 3, "agent_connected", agent="agent2", queue="experts")])

    page = await (await live_client.get(f"/agent/{tok}", params={"key": API_KEY})).text()

    assert "On this call: agent2 (agent)" in page
    assert "agent3 transferred the call to queue experts: &#x27;tariff dispute&#x27;" in page


async def test_the_poll_for_other_processes_events_never_resends_what_came_before_the_page(
        live_client: Client, store: MeteredJourney, monkeypatch: pytest.MonkeyPatch) -> None:
    import ivr.agent.http as agent_http
    monkeypatch.setattr(agent_http, "POLL_S", 0.05)
    tok = await token(live_client)
    await store.append(CUSTOMER, [ev(T0 - 0.01, "key_pressed", node="main", key="9")])  # before the page opened
    resp = await live_client.get(f"/agent/{tok}/live", params={"key": API_KEY, "since": str(T0)})
    await asyncio.sleep(0.2)  # a few polls

    await store.append(CUSTOMER, [ev(T0 + 1, "key_pressed", node="main", key="1")])

    [(_, data)] = await events_of(resp, 1)
    assert data["summary"] == "pressed 1 in main"
    resp.close()
