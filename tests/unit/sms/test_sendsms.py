"""Outbound through smsbox's sendsms: the query it expects, and its refusals as typed errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.sms import dlr
from ivr.sms.errors import SendFailed
from ivr.sms.sendsms import KannelSender, OutboundSms

SMS = OutboundSms("+79992088812", "Your balance is low.", "1000", "notify-1", "C-208812")


class FakeSmsbox:
    """Answers /cgi-bin/sendsms like smsbox does, and keeps each query."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        self.answer = (202, "0: Accepted for delivery")

    async def sendsms(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        status, text = self.answer
        return web.Response(status=status, text=text)


@pytest.fixture
async def smsbox() -> AsyncIterator[tuple[FakeSmsbox, str]]:
    box = FakeSmsbox()
    app = web.Application()
    app.router.add_get("/cgi-bin/sendsms", box.sendsms)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield box, str(server.make_url("/cgi-bin/sendsms"))
    await server.close()


def sender(url: str, **kwargs: object) -> KannelSender:
    return KannelSender(url, "ivr", "pw", controller_url="http://127.0.0.1:8080", **kwargs)  # type: ignore[arg-type]


def test_query_carries_account_numbers_text_and_charset() -> None:
    query = sender("http://x/cgi-bin/sendsms").query(SMS)
    assert {k: query[k] for k in ("username", "password", "from", "to", "text", "charset")} == {
        "username": "ivr", "password": "pw", "from": "1000", "to": "+79992088812", "text": "Your balance is low.",
        "charset": "UTF-8"}


def test_latin_text_goes_as_gsm7_and_cyrillic_as_ucs2() -> None:
    s = sender("http://x/cgi-bin/sendsms")
    assert s.query(SMS)["coding"] == "0"
    assert s.query(OutboundSms("+79993119007", "Ваш баланс", "1000", "n", "k"))["coding"] == "2"


def test_query_asks_for_delivery_reports_naming_the_interaction_and_journey_key() -> None:
    query = sender("http://x/cgi-bin/sendsms").query(SMS)
    assert query["dlr-mask"] == "31"
    url = urlsplit(query["dlr-url"])
    assert (url.scheme, url.netloc, url.path) == ("http", "127.0.0.1:8080", "/sms/dlr")
    fields = parse_qs(url.query)
    assert dlr.decode_ref(fields["ref"][0], None) == ("notify-1", "C-208812")
    assert query["dlr-url"].endswith("&status=%d&answer=%A")


def test_no_delivery_reports_when_the_mask_is_zero() -> None:
    assert "dlr-url" not in sender("http://x/cgi-bin/sendsms", dlr_mask=0).query(SMS)


async def test_accepted_message_gives_a_receipt(smsbox: tuple[FakeSmsbox, str]) -> None:
    box, url = smsbox
    s = sender(url)
    try:
        receipt = await s.send(SMS)
    finally:
        await s.close()
    assert (receipt.status, receipt.detail) == (202, "0: Accepted for delivery")
    assert box.queries[0]["text"] == "Your balance is low."


async def test_refused_message_is_send_failed_with_the_status(smsbox: tuple[FakeSmsbox, str]) -> None:
    box, url = smsbox
    box.answer = (403, "Authorization failed for sendsms")
    s = sender(url)
    try:
        with pytest.raises(SendFailed) as info:
            await s.send(SMS)
    finally:
        await s.close()
    assert info.value.status == 403


async def test_unreachable_smsbox_is_send_failed_without_a_status(unused_tcp_port: int) -> None:
    s = sender(f"http://127.0.0.1:{unused_tcp_port}/cgi-bin/sendsms")
    try:
        with pytest.raises(SendFailed) as info:
            await s.send(SMS)
    finally:
        await s.close()
    assert info.value.status is None
