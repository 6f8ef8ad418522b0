"""GET /agent/{token}: the page the agent's desktop opens when the call lands.

Self-contained, script-free, every value escaped: much of what it shows was typed or
said by the caller.
"""

from __future__ import annotations

import html
import re
from datetime import UTC

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ivr.agent.screen_pop import render_refusal, render_screen_pop
from ivr.agent.service import AgentAccess, AgentContext, JourneyEntry
from ivr.journey.memory import MemoryJourney
from ivr.journey.tokens import TokenService

from .conftest import API_KEY, CALL, CUSTOMER, T0, TTL_S, FakeClock, claim, ev

Client = TestClient[web.Request, web.Application]
HOSTILE = '<script>alert("x")</script>'


async def open_pop(client: Client, token: str, *, key: str | None = API_KEY, header: bool = False) -> tuple[int, str]:
    if header:
        resp = await client.get(f"/agent/{token}", headers={"X-API-Key": key or ""})
    else:
        resp = await client.get(f"/agent/{token}", params={} if key is None else {"key": key})
    return resp.status, await resp.text()


async def a_journey(journey: MemoryJourney) -> None:
    await journey.append(CUSTOMER, [ev(T0 - 2 * 86400, "sms_sent", "sms-7", "sms", text="Roaming pack -50%")])
    await journey.append(CUSTOMER, [ev(T0 - 3600, "ussd_request", "ussd-3", "ussd", code="*100#", service="balance")])
    await journey.append(CUSTOMER, [ev(T0 - 50, "key_pressed", node="main", key="2"),
                                    ev(T0 - 40, "speech_matched", node="tariffs", text="roaming", key="4")])


def text_of(page: str) -> str:
    """The page's visible text, roughly: tags out, whitespace folded."""
    return html.unescape(" ".join(re.sub(r"<style>.*?</style>|<[^>]+>", " ", page, flags=re.S).split()))


# -- the page --------------------------------------------------------------------------------


async def test_screen_pop_opens_with_the_key_in_the_query(client: Client, tokens: TokenService) -> None:
    status, page = await open_pop(client, await tokens.issue(claim()))

    assert status == 200 and page.startswith("<!DOCTYPE html>")


async def test_screen_pop_opens_with_the_key_in_the_header(client: Client, tokens: TokenService) -> None:
    status, _ = await open_pop(client, await tokens.issue(claim()), header=True)

    assert status == 200


async def test_screen_pop_says_who_and_why(client: Client, tokens: TokenService) -> None:
    _, page = await open_pop(client, await tokens.issue(claim()))

    text = text_of(page)
    assert f"Customer {CUSTOMER}" in text and "collections: overdue 45 days" in text and "queue collections P5" in text


async def test_screen_pop_shows_the_journey_across_channels_newest_first(client: Client, tokens: TokenService,
                                                                          journey: MemoryJourney) -> None:
    await a_journey(journey)

    _, page = await open_pop(client, await tokens.issue(claim()))

    text = text_of(page)
    order = [text.index(s) for s in ("said 'roaming' in tariffs", "pressed 2 in main",
                                     "checked balance by USSD *100#", "received an SMS: 'Roaming pack -50%'")]
    assert order == sorted(order)


async def test_screen_pop_groups_the_journey_by_interaction_with_its_channel(client: Client, tokens: TokenService,
                                                                            journey: MemoryJourney) -> None:
    await a_journey(journey)

    _, page = await open_pop(client, await tokens.issue(claim()))

    assert re.findall(r'<div class="group (\w+)" data-interaction=', page) == ["voice", "ussd", "sms"]


async def test_screen_pop_marks_the_current_call(client: Client, tokens: TokenService, journey: MemoryJourney) -> None:
    await a_journey(journey)

    _, page = await open_pop(client, await tokens.issue(claim()))

    assert '<span class="current">this call</span>' in page


async def test_screen_pop_counts_contacts_per_channel(client: Client, tokens: TokenService,
                                                      journey: MemoryJourney) -> None:
    await a_journey(journey)

    _, page = await open_pop(client, await tokens.issue(claim()))

    assert "1 call" in text_of(page) and "1 USSD session" in text_of(page) and "1 SMS" in text_of(page)


async def test_screen_pop_needs_no_script_and_no_external_asset(client: Client, tokens: TokenService,
                                                                 journey: MemoryJourney) -> None:
    await a_journey(journey)

    _, page = await open_pop(client, await tokens.issue(claim()))

    assert "<script" not in page and "<link" not in page and "src=" not in page and "url(" not in page


async def test_screen_pop_forbids_scripts_by_policy_too(client: Client, tokens: TokenService) -> None:
    resp = await client.get(f"/agent/{await tokens.issue(claim())}", params={"key": API_KEY})

    assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert resp.headers["Referrer-Policy"] == "no-referrer"


# -- escaping ------------------------------------------------------------------------------


async def test_screen_pop_escapes_what_the_caller_said(client: Client, tokens: TokenService,
                                                       journey: MemoryJourney) -> None:
    await journey.append(CUSTOMER, [ev(T0 - 5, "speech_matched", node="main", text=HOSTILE, key="1")])

    _, page = await open_pop(client, await tokens.issue(claim()))

    assert "<script" not in page and "&lt;script&gt;alert(&quot;x&quot;)" in page


async def test_screen_pop_escapes_the_routing_reason_and_customer_key(client: Client, tokens: TokenService) -> None:
    token = await tokens.issue(claim(route_reason=HOSTILE, customer_key='"><img src=x onerror=alert(1)>'))

    _, page = await open_pop(client, token)

    assert "<script" not in page and "<img" not in page


async def test_screen_pop_escapes_a_hostile_channel_and_interaction(client: Client, tokens: TokenService,
                                                                    journey: MemoryJourney) -> None:
    await journey.append(CUSTOMER, [ev(T0 - 5, "sms_received", HOSTILE, '"><marquee>x</marquee>', text="hi")])

    _, page = await open_pop(client, await tokens.issue(claim()))

    assert "<script" not in page and "<marquee" not in page


def test_a_rendered_page_escapes_every_journey_field() -> None:
    entry = JourneyEntry(T0, "voice", CALL, HOSTILE, {}, HOSTILE)
    page = render_screen_pop(AgentContext(claim(issued_at=T0, expires_at=T0 + TTL_S), (entry,), HOSTILE), tz=UTC)

    assert "<script" not in page


# -- refusals ---------------------------------------------------------------------------------


async def test_screen_pop_without_a_key_is_401(client: Client, tokens: TokenService) -> None:
    status, page = await open_pop(client, await tokens.issue(claim()), key=None)

    assert status == 401 and "Not authorised" in page


async def test_screen_pop_with_a_wrong_key_in_the_header_is_401(client: Client, tokens: TokenService) -> None:
    status, _ = await open_pop(client, await tokens.issue(claim()), key="wrong", header=True)

    assert status == 401


async def test_screen_pop_of_an_expired_token_is_404(client: Client, tokens: TokenService, clock: FakeClock) -> None:
    token = await tokens.issue(claim())
    clock.advance(TTL_S + 1)

    assert await open_pop(client, token) == (404, render_refusal(404))


async def test_screen_pop_of_a_tampered_token_is_the_same_404(client: Client, tokens: TokenService) -> None:
    token = await tokens.issue(claim())
    token = token[:-1] + ("A" if token[-1] != "A" else "B")

    assert await open_pop(client, token) == (404, render_refusal(404))


async def test_screen_pop_refusal_does_not_echo_the_token(client: Client) -> None:
    status, page = await open_pop(client, "<i>probe</i>")

    assert status == 404 and "probe" not in page


async def test_what_came_after_the_call_was_put_through_is_said_to_be_after(
        client: Client, tokens: TokenService, journey: MemoryJourney, clock: FakeClock) -> None:
    token = await tokens.issue(claim())
    await journey.append(CUSTOMER, [ev(T0 + 25, "ussd_request", "ussd-9", "ussd", code="*100#", service="balance")])
    clock.advance(30)

    _, page = await open_pop(client, token)

    assert "25 s after this call was put through" in text_of(page)
    assert "just before" not in text_of(page)


class CrmNames:
    def __init__(self, names: dict[str, str], *, fail: bool = False) -> None:
        self.names, self.fail = names, fail

    async def name_of(self, customer_key: str) -> str | None:
        if self.fail:
            raise ConnectionError("CRM down")
        return self.names.get(customer_key)


@pytest.mark.parametrize(("names", "shown"), [
    (CrmNames({CUSTOMER: "Ivan Petrov"}), "Ivan Petrov"),
    (CrmNames({}, fail=True), None),
])
async def test_the_page_asks_the_crm_for_the_name_the_journey_does_not_hold(
        tokens: TokenService, journey: MemoryJourney, names: CrmNames, shown: str | None) -> None:
    access = AgentAccess(tokens, journey, API_KEY, names=names)

    found = await access.context(await tokens.issue(claim()))

    assert found.customer_name == shown
    assert (shown or "") in text_of(render_screen_pop(found))
