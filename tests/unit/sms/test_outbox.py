"""The SMS outbox: what smsbox never received waits and goes in order; nothing is sent twice."""

from __future__ import annotations

import pytest

from ivr.backoff import Backoff
from ivr.sms.errors import SendFailed, SmsboxUnreachable
from ivr.sms.outbox import QUEUED, SmsOutbox
from ivr.sms.sendsms import OutboundSms, SendReceipt


class Smsbox:
    """smsbox as the outbox sees it: away (connection refused), ambiguous, refusing, or taking texts."""

    def __init__(self) -> None:
        self.away = False
        self.broken_after_sending = False
        self.refuse: set[str] = set()
        self.taken: list[str] = []
        self.tries = 0

    async def send(self, sms: OutboundSms) -> SendReceipt:
        self.tries += 1
        if self.away:
            raise SmsboxUnreachable("connection refused")
        if self.broken_after_sending:
            raise SendFailed("smsbox did not answer: ServerDisconnectedError")
        if sms.text in self.refuse:
            raise SendFailed("smsbox refused the SMS: HTTP 403", status=403)
        self.taken.append(sms.text)
        return SendReceipt(202, "0: Accepted for delivery")


def text(body: str) -> OutboundSms:
    return OutboundSms("+79991234567", body, "1000", f"notify-{body}", "C-100231")


def outbox(smsbox: Smsbox, **options: object) -> SmsOutbox:
    return SmsOutbox(smsbox, backoff=Backoff(initial_s=0.01, maximum_s=0.01), **options)  # type: ignore[arg-type]


async def test_texts_sent_while_smsbox_is_away_wait_and_go_in_order_once_it_answers() -> None:
    smsbox = Smsbox()
    box = outbox(smsbox)
    smsbox.away = True
    receipts = [await box.send(text("one")), await box.send(text("two"))]
    assert [r.status for r in receipts] == [QUEUED, QUEUED] and box.stats.waiting == 2

    smsbox.away = False
    await box.drained()

    assert smsbox.taken == ["one", "two"] and (box.stats.waiting, box.stats.sent) == (0, 2)


async def test_a_text_after_smsbox_came_back_waits_behind_the_queued_ones() -> None:
    smsbox = Smsbox()
    box = outbox(smsbox)
    smsbox.away = True
    await box.send(text("one"))
    smsbox.away = False
    await box.send(text("two"))
    await box.drained()
    assert smsbox.taken == ["one", "two"]


async def test_a_failure_after_the_request_left_is_raised_and_never_retried() -> None:
    smsbox = Smsbox()
    smsbox.broken_after_sending = True
    box = outbox(smsbox)
    with pytest.raises(SendFailed):
        await box.send(text("one"))
    assert smsbox.tries == 1 and box.stats.queued == 0  # smsbox may have taken it: a retry could send it twice


async def test_a_text_smsbox_refuses_once_back_is_dropped_and_counted_without_holding_the_rest() -> None:
    smsbox = Smsbox()
    box = outbox(smsbox)
    smsbox.away = True
    await box.send(text("bad"))
    await box.send(text("good"))
    smsbox.refuse.add("bad")
    smsbox.away = False
    await box.drained()
    assert smsbox.taken == ["good"] and box.stats.dropped == 1


async def test_a_full_outbox_refuses_the_new_text_loudly() -> None:
    smsbox = Smsbox()
    box = outbox(smsbox, limit=2)
    smsbox.away = True
    await box.send(text("one"))
    await box.send(text("two"))
    with pytest.raises(SendFailed, match="already wait"):
        await box.send(text("three"))
    assert box.stats.dropped == 1
    await box.close()
