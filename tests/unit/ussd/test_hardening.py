"""Hostile and broken requests get a clean 400/401/403, never a 500, and the gateway keeps serving."""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.crm.lookup import CrmLookup
from ivr.journey.memory import MemoryJourney
from ivr.live.trees import TreeStore
from ivr.ussd import UssdConfig, UssdGateway
from ivr.ussd.auth import sign
from ivr.ussd.config import Auth
from tests.clock import FakeClock
from tests.unit.ussd.conftest import ANNA, IVAN, CountingActions, Phone, serve, with_changes

Client = TestClient[web.Request, web.Application]
MARIA = "+79991255700"
GOOD = {"sessionId": "ATUid_h1", "serviceCode": "*100#", "phoneNumber": MARIA, "networkCode": "62120", "text": ""}
SECRET = b"s" * 32
ALLOWED = {200, 400, 401, 403, 429}


def form(**changes: Any) -> dict[str, str]:
    return {k: v for k, v in {**GOOD, **changes}.items() if v is not None}


async def still_serves(client: Client) -> None:
    response = await client.post("/ussd", data=form(sessionId="ATUid_after"))
    assert response.status == 200
    assert (await response.text()).startswith("END Your balance is 512.40 RUB.")


@pytest.mark.parametrize("changes", [
    {"sessionId": None}, {"serviceCode": None}, {"phoneNumber": None},
    {"text": "1*" * 200}, {"text": "1\x00"}, {"text": "\x1b[31m"}, {"phoneNumber": "anonymous"},
    {"phoneNumber": "+1"}, {"serviceCode": "100"}, {"sessionId": "x" * 500},
], ids=["no-session", "no-code", "no-number", "long-text", "nul", "escape", "anonymous", "short-number",
        "bad-code", "long-session"])
async def test_a_bad_form_is_a_400(ussd: Client, changes: dict[str, Any]) -> None:
    response = await ussd.post("/ussd", data=form(**changes))
    assert response.status == 400
    assert (await response.text()).startswith("bad request: ")
    await still_serves(ussd)


@pytest.mark.parametrize("body", [b"sessionId=\xff\xfe", b"text=%ff&sessionId=a", b"\x00\x01\x02",
                                  b"a=1&" * 40])
async def test_an_unreadable_body_is_a_400(ussd: Client, body: bytes) -> None:
    response = await ussd.post("/ussd", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 400
    await still_serves(ussd)


async def test_a_body_over_the_limit_is_a_400(ussd: Client, config: UssdConfig) -> None:
    body = urlencode(form(text="1")).encode() + b"&pad=" + b"x" * config.limits.max_body_bytes
    response = await ussd.post("/ussd", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 400


async def test_a_json_request_is_answered(ussd: Client) -> None:
    response = await ussd.post("/ussd", data=json.dumps(form()), headers={"Content-Type": "application/json"})
    assert response.status == 200 and (await response.text()).startswith("END Your balance is")


@pytest.mark.parametrize("body", ["[1, 2]", "{", '{"sessionId": 5}', json.dumps(form(text=["1"]))])
async def test_bad_json_is_a_400(ussd: Client, body: str) -> None:
    response = await ussd.post("/ussd", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400


async def test_another_content_type_is_a_400(ussd: Client) -> None:
    response = await ussd.post("/ussd", data=urlencode(form()), headers={"Content-Type": "text/xml"})
    assert response.status == 400


async def test_a_text_that_rewrites_the_sessions_history_is_a_400(ussd: Client) -> None:
    anna = Phone(ussd, ANNA)
    await anna.dial("*111#")
    await anna.send("2")
    await anna.post("3")
    assert anna.status == 400


async def test_another_number_cannot_continue_a_session(ussd: Client) -> None:
    anna = Phone(ussd, ANNA)
    await anna.dial("*111#")
    intruder = Phone(ussd, IVAN)
    intruder.session_id, intruder.code = anna.session_id, "*111#"
    await intruder.send("1")
    assert intruder.status == 400


async def test_a_stale_retry_gets_the_current_screen(ussd: Client) -> None:
    anna = Phone(ussd, ANNA)
    await anna.dial("*111#")
    current = await anna.send("2")
    assert await anna.post("") == current


@pytest.fixture
async def guarded(config: UssdConfig, trees: TreeStore, lookup: CrmLookup, actions: CountingActions,
                  journey: MemoryJourney, clock: FakeClock) -> AsyncIterator[Client]:
    signed = dataclasses.replace(config, auth=Auth(secret=SECRET))
    client = await serve(UssdGateway(signed, trees, lookup, actions, journey, clock=clock))
    yield client
    await client.close()


async def test_a_signed_request_is_answered(guarded: Client) -> None:
    body = urlencode(form()).encode()
    response = await guarded.post("/ussd", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-IVR-Signature": sign(SECRET, body)})
    assert response.status == 200


@pytest.mark.parametrize("signature", [None, "sha256=00", "md5=abc"])
async def test_an_unsigned_or_badly_signed_request_is_a_401(guarded: Client, signature: str | None) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature:
        headers["X-IVR-Signature"] = signature
    response = await guarded.post("/ussd", data=urlencode(form()).encode(), headers=headers)
    assert response.status == 401


async def test_a_signature_of_another_body_is_a_401(guarded: Client) -> None:
    body = urlencode(form()).encode()
    response = await guarded.post("/ussd", data=body + b"&x=1", headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-IVR-Signature": sign(SECRET, body)})
    assert response.status == 401


async def test_a_peer_outside_the_allow_list_is_a_403(config: UssdConfig, trees: TreeStore, lookup: CrmLookup,
                                                      actions: CountingActions, journey: MemoryJourney) -> None:
    fenced = dataclasses.replace(config, auth=Auth(allow_from=(ipaddress.ip_network("10.0.0.0/8"),)))
    client = await serve(UssdGateway(fenced, trees, lookup, actions, journey))
    try:
        assert (await client.post("/ussd", data=form())).status == 403
    finally:
        await client.close()


async def test_a_peer_inside_the_allow_list_is_answered(config: UssdConfig, trees: TreeStore, lookup: CrmLookup,
                                                        actions: CountingActions, journey: MemoryJourney) -> None:
    fenced = dataclasses.replace(config, auth=Auth(allow_from=(ipaddress.ip_network("127.0.0.0/8"),)))
    client = await serve(UssdGateway(fenced, trees, lookup, actions, journey))
    try:
        assert (await client.post("/ussd", data=form())).status == 200
    finally:
        await client.close()


async def test_a_bug_behind_the_gateway_is_an_end_screen_not_a_500(config: UssdConfig, trees: TreeStore,
                                                                   journey: MemoryJourney) -> None:
    class Broken:
        async def lookup(self, raw: str | None) -> None:
            raise RuntimeError("bug")

    client = await serve(UssdGateway(config, trees, Broken(), None, journey))  # type: ignore[arg-type]
    try:
        response = await client.post("/ussd", data=form(serviceCode="*111#"))
        assert response.status == 200
        assert await response.text() == "END Sorry, the service is busy. Please try again later."
    finally:
        await client.close()


# -- fuzz ----------------------------------------------------------------------------------

FIELDS = ["sessionId", "serviceCode", "phoneNumber", "networkCode", "text"]
_plausible = {
    "sessionId": st.sampled_from(["ATUid_f1", "ATUid_f2", "ATUid_f3", "s"]),
    "serviceCode": st.sampled_from(["*100#", "*111#", "*111*2#", "*999#", "*111", "#", ""]),
    "phoneNumber": st.sampled_from([ANNA, IVAN, "+79990000001", "8 999 208-88-12", "anonymous", "", "+"]),
    "networkCode": st.sampled_from(["62120", "", "x" * 40]),
    "text": st.lists(st.sampled_from(["1", "2", "3", "0", "9", "#", "00", "", "123456", "9876"]),
                     max_size=8).map("*".join),
}
_wild_text = st.one_of(st.text(max_size=40), st.text(max_size=400),
                       st.sampled_from(["\x00", "\ud800", "\u202e1", "１２３", "*" * 300, "é" * 257]))


def _value(name: str) -> st.SearchStrategy[str]:
    return st.one_of(_plausible[name], _wild_text)


_form_fields = st.fixed_dictionaries({}, optional={name: _value(name) for name in FIELDS}).flatmap(
    lambda fields: st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3).map(
        lambda extra: {**extra, **fields}))
_json_value = st.one_of(st.text(max_size=30), st.integers(), st.none(), st.booleans(), st.floats(),
                        st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                             max_size=2))
# Requests an aggregator could really send, so the fuzz reaches sessions, replays and pages too.
_sessions = st.fixed_dictionaries({
    "sessionId": st.integers(min_value=0, max_value=60).map(lambda n: f"ATUid_f{n}"),
    "serviceCode": st.sampled_from(["*111#", "*111*2#", "*100#"]),
    "phoneNumber": st.sampled_from([ANNA, IVAN, "+79990000001"]),
    "text": _plausible["text"],
})
_requests = st.one_of(
    _sessions.map(lambda f: ("form", urlencode(f).encode())),
    _sessions.map(lambda f: ("json", json.dumps(f).encode())),
    _form_fields.map(lambda f: ("form", urlencode(f, errors="surrogatepass").encode("utf-8", "surrogatepass"))),
    _form_fields.map(lambda f: ("json", json.dumps(f).encode())),
    st.dictionaries(st.sampled_from(FIELDS), _json_value).map(lambda f: ("json", json.dumps(f).encode())),
    st.binary(max_size=600).map(lambda b: ("form", b)),
    st.binary(max_size=600).map(lambda b: ("json", b)),
    st.tuples(st.sampled_from(["text/plain", "multipart/form-data", "", "application/json; charset=latin-1",
                               "application/x-www-form-urlencoded; charset=utf-8", "\x7f"]),
              st.binary(max_size=200)),
)
_checks = itertools.count(5_000_000)
CONTENT_TYPES = {"form": "application/x-www-form-urlencoded", "json": "application/json"}


@pytest.fixture
async def fuzzed(config: UssdConfig, trees: TreeStore, lookup: CrmLookup, actions: CountingActions,
                 journey: MemoryJourney, clock: FakeClock) -> AsyncIterator[Client]:
    """One gateway for every example (state builds up, as in a process that keeps serving);
    a rate limit loose enough for the sessions to get deep, tight enough to be hit."""
    loose = with_changes(config, rate_limit={"burst": 150, "per_minute": 1})
    client = await serve(UssdGateway(loose, trees, lookup, actions, journey, clock=clock))
    yield client
    await client.close()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=_requests)
async def test_random_requests_and_notifications_never_get_a_500_and_the_gateway_keeps_serving(fuzzed: Client,
                                                                            request: tuple[str, bytes]) -> None:
    ussd = fuzzed
    kind, body = request
    content_type = CONTENT_TYPES.get(kind, kind)
    headers = {"Content-Type": content_type} if content_type.isprintable() and content_type else {}
    response = await ussd.post("/ussd", data=body, headers=headers)
    text = await response.text()
    assert response.status in ALLOWED, (response.status, text)
    if response.status == 200:
        assert text.startswith(("CON ", "END ")) and len(text) <= 4 + 182
    # The same bytes as an end-of-session notification: stored, or refused cleanly.
    notified = await ussd.post("/ussd/events", data=body, headers=headers)
    assert notified.status in {200, 400}, (notified.status, await notified.text())
    # A good request from a number of its own (the fuzzed numbers may be rate limited by now).
    check = await ussd.post("/ussd", data=form(sessionId=f"ATUid_ok{next(_checks)}",
                                               phoneNumber=f"+7999{next(_checks):07d}"))
    assert check.status == 200
    assert await check.text() == "END Sorry, this number is not registered with us."
