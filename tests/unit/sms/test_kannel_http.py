"""The HTTP edge Kannel calls: replies as text/plain, Kannel headers, and every bad request a clean 400."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from ivr.journey.errors import StoreUnavailable
from ivr.journey.memory import MemoryJourney
from ivr.sms import dlr
from ivr.sms.kannel_http import mount_sms
from ivr.sms.service import SmsService

from .conftest import ANNA, kannel_query, with_config

Client = TestClient[web.Request, web.Application]


async def get(client: Client, query: str, path: str = "/sms/kannel", **headers: str) -> tuple[int, str, dict[str, str]]:
    """GET with the query sent byte for byte as given (no re-encoding by the client)."""
    url = URL(f"{client.make_url(path)}?{query}", encoded=True)
    async with client.session.get(url, headers=headers) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


@pytest.fixture
async def client_for() -> AsyncIterator:
    clients: list[Client] = []

    async def make(service: SmsService) -> Client:
        app = web.Application()
        mount_sms(app, service)
        client = TestClient(TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_reply_is_the_plain_text_body(sms_client: Client) -> None:
    status, body, headers = await get(sms_client, kannel_query(ANNA, "BAL"))
    assert (status, body) == (200, "Your balance is 15,420.75 RUB.")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


async def test_gsm7_reply_asks_kannel_for_gsm7_coding(sms_client: Client) -> None:
    _, _, headers = await get(sms_client, kannel_query(ANNA, "BAL"))
    assert headers["X-Kannel-Coding"] == "0"


async def test_cyrillic_request_and_reply_go_as_utf8_and_ucs2(sms_client: Client) -> None:
    status, body, headers = await get(sms_client, kannel_query(ANNA, "баланс"))
    assert (status, body) == (200, "Ваш баланс: 15,420.75 RUB.")
    assert headers["X-Kannel-Coding"] == "2"


async def test_text_in_the_charset_kannel_names_is_decoded(sms_client: Client) -> None:
    ucs2 = quote("БАЛАНС".encode("utf-16-be"), safe="")
    query = f"from=%2B79991234567&to=1000&text={ucs2}&id=m9&coding=2&charset=UTF-16BE"
    assert (await get(sms_client, query))[1] == "Ваш баланс: 15,420.75 RUB."


async def test_plus_in_the_query_is_a_space(sms_client: Client) -> None:
    query = "from=%2B79991234567&to=1000&text=ROAM+OFF&id=m2"
    assert (await get(sms_client, query))[1] == "Roaming is now off."


async def test_reply_asks_for_delivery_reports_to_our_dlr_endpoint(sms_client: Client) -> None:
    _, _, headers = await get(sms_client, kannel_query(ANNA, "BAL"))
    assert headers["X-Kannel-DLR-Mask"] == "31"
    url = headers["X-Kannel-DLR-Url"]
    assert url.startswith(str(sms_client.make_url("/sms/dlr?ref=")))
    assert url.endswith("&status=%d&answer=%A")


async def test_delivery_report_for_a_reply_lands_in_the_customers_journey(sms_client: Client,
                                                                         sms_journey: MemoryJourney) -> None:
    _, _, headers = await get(sms_client, kannel_query(ANNA, "BAL", message_id="abc"))
    url = URL(headers["X-Kannel-DLR-Url"].replace("%d", "1").replace("%A", ""), encoded=True)
    async with sms_client.session.get(url) as resp:
        assert resp.status == 200
    last = sms_journey.events("C-100231")[-1]
    assert (last.type, last.interaction, last.data["status"]) == ("sms_delivery", "sms-abc", "delivered")


async def test_empty_text_gets_the_help_text(sms_client: Client) -> None:
    status, body, _ = await get(sms_client, kannel_query(ANNA, ""))
    assert status == 200 and body.startswith("Text BAL")


async def test_message_without_id_still_gets_a_reply(sms_client: Client) -> None:
    assert (await get(sms_client, "from=%2B79991234567&to=1000&text=BAL"))[0] == 200


@pytest.mark.parametrize("missing", ["from", "to", "text"])
async def test_missing_field_is_a_400(sms_client: Client, missing: str) -> None:
    query = "&".join(p for p in kannel_query(ANNA, "BAL").split("&") if not p.startswith(missing + "="))
    status, body, _ = await get(sms_client, query)
    assert (status, body) == (400, f"bad request: {missing}: missing")


async def test_over_long_text_is_a_400(sms_client: Client, service: SmsService) -> None:
    status, body, _ = await get(sms_client, kannel_query(ANNA, "x" * (service.config.limits.max_text_chars + 1)))
    assert status == 400 and "text: longer than" in body


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x1b", "\x7f", "\x85"])
async def test_control_characters_in_the_text_are_a_400(sms_client: Client, control: str) -> None:
    status, body, _ = await get(sms_client, kannel_query(ANNA, f"BAL{control}"))
    assert (status, body) == (400, "bad request: text: contains control characters")


async def test_newlines_in_the_text_are_fine(sms_client: Client) -> None:
    assert (await get(sms_client, kannel_query(ANNA, "hi\nthere")))[0] == 200


async def test_invalid_utf8_is_a_400(sms_client: Client) -> None:
    status, body, _ = await get(sms_client, "from=%2B79991234567&to=1000&text=%C3%28&id=m1")
    assert (status, body) == (400, "bad request: text: not valid utf-8")


@pytest.mark.parametrize("bad", ["%", "%4", "%zz", "BAL%G1"])
async def test_invalid_percent_encoding_is_a_400(sms_client: Client, bad: str) -> None:
    status, body, _ = await get(sms_client, f"from=%2B79991234567&to=1000&text={bad}&id=m1")
    assert (status, body) == (400, "bad request: query: invalid percent-encoding")


@pytest.mark.parametrize("number", ["anonymous", "+7999", "12345678901234567890123456789012345678901234", "",
                                    "+7 999 123 45 67 <script>"])
async def test_unparseable_sender_number_is_a_400(sms_client: Client, number: str) -> None:
    status, body, _ = await get(sms_client, kannel_query(number, "BAL"))
    assert status == 400 and body.startswith("bad request: from:")


async def test_a_field_given_twice_is_a_400(sms_client: Client) -> None:
    status, body, _ = await get(sms_client, kannel_query(ANNA, "BAL") + "&text=STOP")
    assert (status, body) == (400, "bad request: text: given more than once")


async def test_binary_messages_are_a_400(sms_client: Client) -> None:
    assert (await get(sms_client, kannel_query(ANNA, "BAL", coding="1")))[0] == 400


async def test_unknown_charset_is_a_400(sms_client: Client) -> None:
    assert (await get(sms_client, kannel_query(ANNA, "BAL", charset="EBCDIC")))[0] == 400


async def test_a_400_never_echoes_what_was_sent(sms_client: Client) -> None:
    _, body, _ = await get(sms_client, kannel_query("secret-number-abc", "BAL"))
    assert "secret-number-abc" not in body


async def test_over_the_rate_gets_an_empty_200_so_kannel_sends_nothing(sms_client: Client,
                                                                       service: SmsService) -> None:
    for i in range(service.config.limits.rate_count):
        assert (await get(sms_client, kannel_query(ANNA, "HELP", message_id=f"r{i}")))[0] == 200
    status, body, headers = await get(sms_client, kannel_query(ANNA, "HELP", message_id="over"))
    assert (status, body, headers["X-IVR-Refused"]) == (200, "", "rate-limited")
    assert int(headers["Retry-After"]) >= 1


async def test_address_outside_the_allow_list_is_a_403(service: SmsService, client_for) -> None:
    only_elsewhere = dataclasses.replace(service.config.security,
                                         allow_ips=(ipaddress.ip_network("10.0.0.0/8"),))
    client = await client_for(with_config(service, security=only_elsewhere))
    assert (await get(client, kannel_query(ANNA, "BAL")))[0] == 403
    assert (await get(client, "ref=x.y&status=1", path="/sms/dlr"))[0] == 403


async def test_with_a_secret_an_unsigned_request_is_a_401(service: SmsService, client_for) -> None:
    signed = dataclasses.replace(service.config.security, hmac_secret="s3cret")
    client = await client_for(with_config(service, security=signed))
    assert (await get(client, kannel_query(ANNA, "BAL")))[0] == 401
    assert (await get(client, kannel_query(ANNA, "BAL"), **{"X-IVR-Signature": "00" * 32}))[0] == 401


async def test_with_a_secret_a_signed_request_is_answered(service: SmsService, client_for) -> None:
    signed = dataclasses.replace(service.config.security, hmac_secret="s3cret")
    client = await client_for(with_config(service, security=signed))
    query = kannel_query(ANNA, "BAL")
    signature = hmac.new(b"s3cret", query.encode(), hashlib.sha256).hexdigest()
    status, body, headers = await get(client, query, **{"X-IVR-Signature": signature})
    assert (status, body) == (200, "Your balance is 15,420.75 RUB.")
    assert "&sig=" in headers["X-Kannel-DLR-Url"]


async def test_with_a_secret_a_forged_delivery_report_is_a_400(service: SmsService, client_for) -> None:
    signed = dataclasses.replace(service.config.security, hmac_secret="s3cret")
    client = await client_for(with_config(service, security=signed))
    forged = dlr.encode_ref("sms-x", "C-100231")  # no signature
    status, body, _ = await get(client, f"ref={forged['ref']}&status=1", path="/sms/dlr")
    assert (status, body) == (400, "bad request: sig: missing or wrong signature")


async def test_delivery_report_without_a_ref_is_a_400(sms_client: Client) -> None:
    status, body, _ = await get(sms_client, "status=1", path="/sms/dlr")
    assert (status, body) == (400, "bad request: ref: missing")


@pytest.mark.parametrize("ref", ["nodot", "a.b.c", "!!!.???", "."])
async def test_delivery_report_with_a_ref_we_did_not_issue_is_a_400(sms_client: Client, ref: str) -> None:
    assert (await get(sms_client, f"ref={quote(ref)}&status=1", path="/sms/dlr"))[0] == 400


@pytest.mark.parametrize("status_value", ["", "x", "-1", "99999"])
async def test_delivery_report_with_a_bad_status_is_a_400(sms_client: Client, status_value: str) -> None:
    ref = dlr.encode_ref("sms-1", "C-100231")["ref"]
    assert (await get(sms_client, f"ref={ref}&status={status_value}", path="/sms/dlr"))[0] == 400


async def test_delivery_report_the_store_cannot_take_is_a_503(sms_client: Client,
                                                              sms_journey: MemoryJourney) -> None:
    async def broken(key: str, events: object) -> None:
        raise StoreUnavailable("memory", "append", OSError("disk full"))

    sms_journey.append = broken  # type: ignore[method-assign]
    ref = dlr.encode_ref("sms-1", "C-100231")["ref"]
    assert (await get(sms_client, f"ref={ref}&status=1", path="/sms/dlr"))[0] == 503


async def test_a_bug_behind_the_edge_is_a_503_not_a_500(sms_client: Client, service: SmsService) -> None:
    async def crash(sms: object) -> None:
        raise RuntimeError("bug")

    service.handle = crash  # type: ignore[method-assign,assignment]
    assert (await get(sms_client, kannel_query(ANNA, "BAL")))[0] == 503

