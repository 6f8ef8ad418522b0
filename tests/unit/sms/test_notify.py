"""``notify``: the template in the customer's language, sent, and recorded for the agent; STOP respected."""

from __future__ import annotations

import pytest

from ivr.agent.service import summarize
from ivr.journey.memory import MemoryJourney
from ivr.sms.errors import NotifyRefused
from ivr.sms.notify import notify
from ivr.sms.service import InboundSms, SmsService

from .conftest import IVAN, OLGA, UNKNOWN, RecordingSender, with_config


async def test_notification_is_sent_in_the_customers_language(service: SmsService, sender: RecordingSender) -> None:
    result = await notify(service, OLGA, "low_balance")
    assert result.language == "ru"
    assert result.text.startswith("Ольга, ваш баланс 340.00 RUB.")
    (sms,) = sender.sent
    assert (sms.to, sms.text, sms.sender, sms.journey_key) == (OLGA, result.text, "1000", "C-311907")


async def test_number_in_national_format_is_normalised(service: SmsService, sender: RecordingSender) -> None:
    await notify(service, "8 999 208-88-12", "low_balance")
    assert sender.sent[0].to == IVAN


async def test_notification_is_recorded_as_sms_sent(service: SmsService, sms_journey: MemoryJourney) -> None:
    result = await notify(service, IVAN, "low_balance")
    (event,) = sms_journey.events("C-208812")
    assert (event.type, event.channel, event.interaction) == ("sms_sent", "sms", result.interaction)
    assert (event.data["text"], event.data["template"]) == (result.text, "notify.low_balance")
    assert summarize(event).startswith("received an SMS: 'Ivan, your balance is -1,250.00 RUB.")


async def test_vars_fill_the_template(service: SmsService) -> None:
    result = await notify(service, IVAN, "payment_due", amount="1250", due="2025-01-31")
    assert result.text.startswith("Please pay 1,250.00 RUB by 2025-01-31")


async def test_missing_var_is_refused_before_sending(service: SmsService, sender: RecordingSender) -> None:
    with pytest.raises(NotifyRefused, match="needs amount, due"):
        await notify(service, IVAN, "payment_due")
    assert sender.sent == []


async def test_unknown_template_is_refused_naming_the_known_ones(service: SmsService) -> None:
    with pytest.raises(NotifyRefused) as info:
        await notify(service, IVAN, "low_balanse")
    assert "low_balance" in info.value.hint


async def test_bad_number_is_refused(service: SmsService) -> None:
    with pytest.raises(NotifyRefused, match="not a phone number"):
        await notify(service, "not-a-number", "low_balance")


async def test_opted_out_number_gets_nothing(service: SmsService, sender: RecordingSender) -> None:
    await service.handle(InboundSms(IVAN, "1000", "STOP", "m-stop"))
    with pytest.raises(NotifyRefused) as info:
        await notify(service, IVAN, "low_balance")
    assert info.value.error_id == "sms-opted-out"
    assert sender.sent == []


async def test_template_that_needs_a_customer_is_refused_for_an_unknown_number(service: SmsService) -> None:
    with pytest.raises(NotifyRefused, match="cannot be filled in"):
        await notify(service, UNKNOWN, "low_balance")


async def test_without_a_sender_nothing_can_be_sent(service: SmsService) -> None:
    no_sender = with_config(service)
    no_sender.sender = None
    with pytest.raises(NotifyRefused, match="no SMS sender"):
        await notify(no_sender, IVAN, "low_balance")


async def test_a_long_notification_is_shortened_to_the_budget(service: SmsService) -> None:
    result = await notify(with_config(service, max_segments=1), OLGA, "low_balance")
    assert result.segments.count == 1
    assert result.text.endswith("…")
