"""The agent API under attack and audit: who opened which journey, revocation, guessing.

- every journey a token opens (context, page, live feed) is in the audit trail with the agent;
- a token can be revoked, for every controller sharing the store;
- every refusal takes one timing class, and an address that keeps guessing gets 429.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.agent.http import mount_agent_api
from ivr.agent.service import AUDIT_KEY
from ivr.errors import IvrError
from ivr.journey.errors import StoreUnavailable
from ivr.journey.memory import MemoryJourney
from ivr.journey.ports import StampedEvent
from ivr.journey.tokens import TokenService
from ivr.refusals import RefusalGuard, trusted_networks

from .conftest import API_KEY, CALL, CUSTOMER, SECRET, TTL_S, FakeClock, claim

Client = TestClient[web.Request, web.Application]
AGENT = {"X-API-Key": API_KEY, "X-IVR-User": "anna.petrova"}


class Stopwatch:
    """A guard's clock that stands still, and the waits it asked for."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self) -> float:
        return 1000.0

    async def pause(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))


@pytest.fixture
def watch() -> Stopwatch:
    return Stopwatch()


@pytest.fixture
async def client(tokens: TokenService, journey: MemoryJourney, watch: Stopwatch) -> AsyncIterator[Client]:
    app = web.Application()
    guard = RefusalGuard(failures=5, window_s=60, clock=watch, pause=watch.pause)
    mount_agent_api(app, tokens, journey, API_KEY, audit=journey, guard=guard)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as test_client:
        yield test_client


async def audit_of(journey: MemoryJourney) -> list[dict[str, object]]:
    return [dict(e.data) for e in reversed(await journey.recent(AUDIT_KEY))]


async def test_a_context_opened_by_an_agent_is_in_the_audit_trail(client: Client, tokens: TokenService,
                                                                  journey: MemoryJourney) -> None:
    token = await tokens.issue(claim())
    assert (await client.get(f"/context/{token}", headers=AGENT)).status == 200
    assert (await client.get(f"/agent/{token}", params={"key": API_KEY, "user": "ivan"})).status == 200

    assert await audit_of(journey) == [
        {"staff": "agent-desktop", "role": "agent", "user": "anna.petrova", "customer": CUSTOMER, "by": "token",
         "outcome": "allowed", "events": 0},
        {"staff": "agent-desktop", "role": "agent", "user": "ivan", "customer": CUSTOMER, "by": "page",
         "outcome": "allowed", "events": 0},
    ]


class AuditDown(MemoryJourney):
    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        if key == AUDIT_KEY:
            raise StoreUnavailable("sqlite", "append", OSError("database is locked"))
        await super().append(key, events)


async def test_a_journey_whose_reading_cannot_be_audited_is_not_served(clock: FakeClock) -> None:
    journey = AuditDown(clock=clock)
    tokens = TokenService(SECRET, journey, ttl_s=TTL_S, clock=clock)
    app = web.Application()
    mount_agent_api(app, tokens, journey, API_KEY, audit=journey)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        resp = await client.get(f"/context/{await tokens.issue(claim())}", headers=AGENT)
        assert resp.status == 503 and CUSTOMER not in await resp.text()


async def test_a_revoked_token_resolves_nowhere_and_the_revocation_is_audited(
        client: Client, tokens: TokenService, journey: MemoryJourney, clock: FakeClock) -> None:
    token = await tokens.issue(claim())
    resp = await client.post(f"/context/{token}/revoke", headers=AGENT)
    assert resp.status == 200 and (await resp.json()) == {"status": "revoked"}

    assert (await client.get(f"/context/{token}", headers=AGENT)).status == 404
    other_controller = TokenService(SECRET, journey, ttl_s=TTL_S, clock=clock)  # the same store
    with pytest.raises(Exception, match="revoked"):
        await other_controller.resolve(token)
    assert (await client.post(f"/context/{token}/revoke", headers=AGENT)).status == 404
    assert [(a["by"], a["outcome"]) for a in await audit_of(journey)] == [("token", "revoked")]


async def test_revoking_needs_the_api_key(client: Client, tokens: TokenService) -> None:
    token = await tokens.issue(claim())
    assert (await client.post(f"/context/{token}/revoke")).status == 401
    assert (await client.get(f"/context/{token}", headers=AGENT)).status == 200


REFUSALS = {
    "wrong key": lambda token, forged, unknown: ("/context/" + token, {"X-API-Key": "guess"}),
    "no key": lambda token, forged, unknown: ("/context/" + token, {}),
    "malformed token": lambda token, forged, unknown: ("/context/not-a-token", AGENT),
    "forged signature": lambda token, forged, unknown: ("/context/" + forged, AGENT),
    "unknown token": lambda token, forged, unknown: ("/context/" + unknown, AGENT),
}


@pytest.mark.parametrize("kind", list(REFUSALS))
async def test_every_kind_of_refusal_is_answered_after_the_same_floor(
        client: Client, tokens: TokenService, watch: Stopwatch, kind: str) -> None:
    token = await tokens.issue(claim())
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    unknown_here = await TokenService(SECRET, MemoryJourney(), ttl_s=TTL_S).issue(claim())  # well signed
    path, headers = REFUSALS[kind](token, forged, unknown_here)

    resp = await client.get(path, headers=headers)

    assert resp.status in (401, 404)
    assert watch.waits == [RefusalGuard().floor_s]  # the clock stood still: the whole floor is waited


async def test_an_address_that_keeps_guessing_is_locked_out_even_with_the_right_key(
        client: Client, tokens: TokenService) -> None:
    token = await tokens.issue(claim())
    for _ in range(5):
        assert (await client.get(f"/context/{token}", headers={"X-API-Key": "guess"})).status == 401

    resp = await client.get(f"/context/{token}", headers=AGENT)

    assert resp.status == 429 and int(resp.headers["Retry-After"]) == 60
    assert (await client.get(f"/agent/{token}", params={"key": API_KEY})).status == 429


async def test_a_lockout_is_per_address_and_ends_when_the_refusals_leave_the_window() -> None:
    now = [0.0]

    async def no_pause(_seconds: float) -> None:
        return None

    guard = RefusalGuard(failures=3, window_s=10, clock=lambda: now[0], pause=no_pause)
    for _ in range(3):
        await guard.refused("10.0.0.9", guard.started())
    assert guard.locked_for("10.0.0.9") == 10 and guard.locked_for("10.0.0.10") == 0
    now[0] = 10.5
    assert guard.locked_for("10.0.0.9") == 0


PROXY = trusted_networks("10.0.0.5, 192.168.7.0/24")


@pytest.mark.parametrize(("peer", "forwarded_for", "counted_as"), [
    ("203.0.113.9", "", "203.0.113.9"),  # no proxy
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # an untrusted peer's header is ignored
    ("10.0.0.5", "198.51.100.1", "198.51.100.1"),  # the proxy names its client
    ("10.0.0.5", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # what the client wrote itself comes first: not believed
    ("10.0.0.5", "198.51.100.1, 192.168.7.20", "198.51.100.1"),  # through two trusted proxies
    ("10.0.0.5", "", "10.0.0.5"),  # a proxy that names nobody
    ("10.0.0.5", "not-an-address", "not-an-address"),  # counted, never trusted as a proxy
], ids=["direct", "untrusted-peer", "one-proxy", "client-forged-hop", "two-proxies", "no-header", "garbage"])
def test_refusals_behind_a_trusted_proxy_count_against_the_client_it_names(peer, forwarded_for, counted_as):
    assert RefusalGuard(trusted_proxies=PROXY).client(peer, forwarded_for) == counted_as


def test_a_trusted_proxy_that_is_not_an_address_is_refused_with_the_setting_named():
    with pytest.raises(IvrError, match=r"\[http\] trusted_proxies: '10.0.0.300'"):
        trusted_networks("10.0.0.1, 10.0.0.300")


async def test_behind_a_trusted_proxy_one_guessing_desk_does_not_lock_out_the_others(
        tokens: TokenService, journey: MemoryJourney, watch: Stopwatch) -> None:
    app = web.Application()
    proxy = trusted_networks("127.0.0.1")  # the test client's address: it plays the proxy
    mount_agent_api(app, tokens, journey, API_KEY, audit=journey,
                    guard=RefusalGuard(failures=5, window_s=60, clock=watch, pause=watch.pause, trusted_proxies=proxy))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as proxied:
        guesser = {"X-API-Key": "wrong", "X-Forwarded-For": "198.51.100.1"}
        for _ in range(6):
            await proxied.get("/context/x", headers=guesser)
        token = await tokens.issue(claim(interaction=CALL))
        other_desk = {"X-API-Key": API_KEY, "X-Forwarded-For": "198.51.100.2"}

        assert (await proxied.get("/context/x", headers=guesser)).status == 429
        assert (await proxied.get(f"/context/{token}", headers=other_desk)).status == 200


async def test_right_answers_do_not_count_towards_a_lockout(client: Client, tokens: TokenService) -> None:
    token = await tokens.issue(claim(interaction=CALL))
    for _ in range(12):
        assert (await client.get(f"/context/{token}", headers=AGENT)).status == 200


async def test_an_agent_name_with_control_characters_is_audited_printable(client: Client, tokens: TokenService,
                                                                          journey: MemoryJourney) -> None:
    token = await tokens.issue(claim())
    resp = await client.get(f"/context/{token}", params={"user": "anna\x00\r\nforged: yes"},
                            headers={"X-API-Key": API_KEY})
    assert resp.status == 200
    assert [a["user"] for a in await audit_of(journey)] == ["anna   forged: yes"]
