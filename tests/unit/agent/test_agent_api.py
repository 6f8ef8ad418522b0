"""GET /context/{token}: the agent desktop turns the call's token into the caller's journey.

Refusals are terse on purpose: 401 without the right key, one 404 body for every token
that does not resolve, so a client cannot tell forged from expired from unknown.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ivr.agent.http import mount_agent_api
from ivr.agent.service import AgentAccess, summarize
from ivr.errors import ConfigError
from ivr.journey.memory import MemoryJourney
from ivr.journey.tokens import TokenService

from .conftest import API_KEY, CALL, CUSTOMER, T0, TTL_S, FakeClock, claim, ev

Client = TestClient[web.Request, web.Application]
KEY = {"X-API-Key": API_KEY}


async def get_context(client: Client, token: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    resp = await client.get(f"/context/{token}", headers=KEY if headers is None else headers)
    return resp.status, await resp.json()


async def a_journey(journey: MemoryJourney) -> None:
    """Yesterday an SMS offer and a USSD balance check, today this call."""
    await journey.append(CUSTOMER, [ev(T0 - 86400, "sms_sent", "sms-7", "sms", text="Roaming pack -50%")])
    await journey.append(CUSTOMER, [ev(T0 - 3600, "ussd_request", "ussd-3", "ussd", code="*100#", service="balance")])
    await journey.append(CUSTOMER, [ev(T0 - 60, "node_entered", node="main", kind="menu"),
                                    ev(T0 - 50, "key_pressed", node="main", key="2"),
                                    ev(T0 - 40, "speech_matched", node="tariffs", text="roaming", key="4"),
                                    ev(T0 - 30, "route_decided", kind="queue", queue="collections", priority=5,
                                       reason="collections: overdue 45 days", rules=["debt"], agent_first="")])


# -- the context --------------------------------------------------------------------------


async def test_context_returns_the_claim_of_the_token(client: Client, tokens: TokenService) -> None:
    status, body = await get_context(client, await tokens.issue(claim()))

    assert status == 200
    assert {k: body[k] for k in ("customer_key", "interaction", "channel", "queue", "priority", "route_reason")} == {
        "customer_key": CUSTOMER, "interaction": CALL, "channel": "voice", "queue": "collections", "priority": 5,
        "route_reason": "collections: overdue 45 days"}


async def test_context_times_are_iso_8601_in_utc(client: Client, tokens: TokenService) -> None:
    _, body = await get_context(client, await tokens.issue(claim()))

    assert (body["issued_at"], body["expires_at"]) == ("2023-11-14T22:13:20.000+00:00", "2023-11-14T22:23:20.000+00:00")


async def test_context_journey_is_newest_first(client: Client, tokens: TokenService, journey: MemoryJourney) -> None:
    await a_journey(journey)

    _, body = await get_context(client, await tokens.issue(claim()))

    ats = [e["at"] for e in body["journey"]]
    assert ats == sorted(ats, reverse=True) and body["journey"][0]["type"] == "route_decided"


async def test_context_journey_spans_every_channel(client: Client, tokens: TokenService,
                                                   journey: MemoryJourney) -> None:
    await a_journey(journey)

    _, body = await get_context(client, await tokens.issue(claim()))

    assert [(e["channel"], e["interaction"]) for e in body["journey"]][-2:] == [("ussd", "ussd-3"), ("sms", "sms-7")]


async def test_context_journey_event_has_its_data_and_a_summary(client: Client, tokens: TokenService,
                                                                journey: MemoryJourney) -> None:
    await a_journey(journey)

    _, body = await get_context(client, await tokens.issue(claim()))

    assert body["journey"][-2] == {"at": "2023-11-14T21:13:20.000+00:00", "channel": "ussd", "interaction": "ussd-3",
                                   "type": "ussd_request", "data": {"code": "*100#", "service": "balance"},
                                   "summary": "checked balance by USSD *100#"}


async def test_context_journey_starts_at_journey_since(client: Client, tokens: TokenService,
                                                       journey: MemoryJourney) -> None:
    await a_journey(journey)

    _, body = await get_context(client, await tokens.issue(claim(journey_since=T0 - 7200)))

    assert {e["channel"] for e in body["journey"]} == {"voice", "ussd"}


async def test_context_journey_is_only_the_tokens_customer(client: Client, tokens: TokenService,
                                                           journey: MemoryJourney) -> None:
    await journey.append("C-OTHER", [ev(T0 - 10, "key_pressed", "call-9", node="main", key="1")])

    _, body = await get_context(client, await tokens.issue(claim()))

    assert body["journey"] == []


async def test_context_journey_holds_at_most_200_events(client: Client, tokens: TokenService,
                                                        journey: MemoryJourney) -> None:
    await journey.append(CUSTOMER, [ev(T0 - 1000 + i, "node_entered", node=f"n{i}") for i in range(250)])

    _, body = await get_context(client, await tokens.issue(claim()))

    assert len(body["journey"]) == 200 and body["journey"][0]["data"]["node"] == "n249"


async def test_context_names_the_customer_when_an_event_carries_the_name(client: Client, tokens: TokenService,
                                                                         journey: MemoryJourney) -> None:
    await journey.append(CUSTOMER, [ev(T0 - 5, "caller_identified", by="caller_id", customer=CUSTOMER,
                                       name="Anna Petrova", crm_ms=12.5)])

    _, body = await get_context(client, await tokens.issue(claim()))

    assert body["customer_name"] == "Anna Petrova"


async def test_context_answers_are_not_cacheable(client: Client, tokens: TokenService) -> None:
    resp = await client.get(f"/context/{await tokens.issue(claim())}", headers=KEY)

    assert resp.headers["Cache-Control"] == "no-store"


# -- the key ------------------------------------------------------------------------------


async def test_context_without_a_key_is_401(client: Client, tokens: TokenService) -> None:
    assert await get_context(client, await tokens.issue(claim()), headers={}) == (401, {"error": "unauthorized"})


async def test_context_with_a_wrong_key_is_401(client: Client, tokens: TokenService) -> None:
    status, _ = await get_context(client, await tokens.issue(claim()), headers={"X-API-Key": API_KEY + "x"})

    assert status == 401


async def test_context_with_a_non_ascii_key_is_401_not_an_error(client: Client, tokens: TokenService) -> None:
    resp = await client.get(f"/context/{await tokens.issue(claim())}", headers={"X-API-Key": "ключ".encode().decode("latin-1")})

    assert resp.status == 401


async def test_context_does_not_take_the_key_from_the_query(client: Client, tokens: TokenService) -> None:
    # Only the screen pop, opened as a plain URL, accepts ?key=; API clients can send a header.
    resp = await client.get(f"/context/{await tokens.issue(claim())}", params={"key": API_KEY})

    assert resp.status == 401


async def test_a_bad_key_is_refused_before_the_token_is_looked_at(client: Client) -> None:
    status, _ = await get_context(client, "not-a-token", headers={"X-API-Key": "wrong"})

    assert status == 401


def test_an_empty_api_key_is_a_configuration_error(tokens: TokenService, journey: MemoryJourney) -> None:
    with pytest.raises(ConfigError, match="key"):
        AgentAccess(tokens, journey, "")


# -- tokens that do not resolve -------------------------------------------------------------


def tamper(token: str) -> str:
    """Change one character of the signature: still well formed, no longer signed by us."""
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


@pytest.mark.parametrize("mangle", [
    pytest.param(tamper, id="tampered signature"),
    pytest.param(lambda t: t.split(".")[0], id="malformed"),
    pytest.param(lambda t: t[:-3], id="truncated"),
    pytest.param(lambda t: "x" * 77, id="garbage"),
])
async def test_context_of_a_token_that_does_not_verify_is_404(client: Client, tokens: TokenService, mangle: Any) -> None:
    assert await get_context(client, mangle(await tokens.issue(claim()))) == (404, {"error": "not_found"})


async def test_context_of_a_token_signed_with_another_secret_is_404(client: Client, journey: MemoryJourney,
                                                                    clock: FakeClock) -> None:
    forger = TokenService(b"f" * 32, journey, ttl_s=TTL_S, clock=clock)

    assert await get_context(client, await forger.issue(claim())) == (404, {"error": "not_found"})


async def test_context_of_an_expired_token_is_404(client: Client, tokens: TokenService, clock: FakeClock) -> None:
    token = await tokens.issue(claim())
    clock.advance(TTL_S)

    assert await get_context(client, token) == (404, {"error": "not_found"})


async def test_context_of_a_well_signed_but_unknown_token_is_404(client: Client, tokens: TokenService,
                                                                 journey: MemoryJourney) -> None:
    token = await tokens.issue(claim())
    await journey.kv_delete("token", token.split(".")[0])

    assert await get_context(client, token) == (404, {"error": "not_found"})


async def test_a_404_does_not_echo_the_token(client: Client, tokens: TokenService) -> None:
    token = tamper(await tokens.issue(claim()))

    resp = await client.get(f"/context/{token}", headers=KEY)

    assert token[:8] not in await resp.text()


async def test_context_is_503_when_the_journey_store_is_down(client: Client, tokens: TokenService,
                                                             journey: MemoryJourney) -> None:
    token = await tokens.issue(claim())
    await journey.close()

    assert await get_context(client, token) == (503, {"error": "unavailable"})


async def test_mounting_adds_the_context_and_the_screen_pop(tokens: TokenService, journey: MemoryJourney) -> None:
    app = web.Application()
    mount_agent_api(app, tokens, journey, API_KEY)

    paths = {r.resource.canonical for r in app.router.routes() if r.method == "GET" and r.resource is not None}
    assert paths == {"/context/{token}", "/agent/{token}"}


# -- summaries -------------------------------------------------------------------------------


@pytest.mark.parametrize(("type_", "data", "summary"), [
    ("key_pressed", {"node": "main", "key": "2"}, "pressed 2 in main"),
    ("key_pressed", {"node": "block_card", "key": "1", "confirm": True}, "confirmed in block_card"),
    ("speech_matched", {"node": "main", "text": "roaming", "key": "4"}, "said 'roaming' in main"),
    ("ussd_request", {"code": "*100#", "service": "balance"}, "checked balance by USSD *100#"),
    ("ussd_request", {"code": "*111*2#"}, "dialled USSD *111*2#"),
    ("sms_sent", {"text": "Roaming pack -50%"}, "received an SMS: 'Roaming pack -50%'"),
    ("sms_received", {"text": "STOP"}, "texted 'STOP'"),
    ("route_decided", {"kind": "queue", "queue": "collections", "reason": "overdue 45 days"},
     "routed to collections: overdue 45 days"),
    ("route_decided", {"kind": "queue", "queue": "collections", "reason": "collections: overdue 45 days"},
     "routed to collections: overdue 45 days"),
    ("route_decided", {"kind": "queue", "queue": "support", "reason": "VIP", "agent_first": "agent1"},
     "routed to support, agent1 first: VIP"),
    ("route_decided", {"kind": "hangup", "queue": "support", "reason": "blacklisted number"},
     "turned away: blacklisted number"),
    ("hangup", {"node": "tariffs", "by": "caller"}, "hung up in tariffs"),
    ("no_input", {"node": "main", "count": 2}, "said nothing in main (attempt 2)"),
    ("input_invalid", {"node": "main", "input": "9", "count": 1}, "answer not understood in main"),
    ("agent_connected", {"agent": "agent1", "queue": "support", "hold_s": 12},
     "answered by agent1 (support, waited 12 s)"),
    ("queue_abandoned", {"queue": "support", "hold_s": 95}, "gave up waiting in support after 95 s"),
    ("caller_identified", {"by": "caller_id", "customer": "C-1", "crm_ms": 8}, "recognised as customer C-1 by caller ID"),
    ("something_new", {"x": 1}, "something new"),
])
def test_summary_reads_as_the_customer_lived_it(type_: str, data: dict[str, Any], summary: str) -> None:
    assert summarize(ev(T0, type_, **data)) == summary


def test_summary_shortens_long_caller_text() -> None:
    summary = summarize(ev(T0, "sms_received", "sms-1", "sms", text="a" * 500))

    assert summary == f"texted '{'a' * 60}…'"


def test_summary_of_data_an_older_version_wrote_does_not_fail() -> None:
    assert summarize(ev(T0, "no_input", node=None, count="two")) == "said nothing"
