"""The SMS service: the right reply, in the right language, within budget, and the journey told."""

from __future__ import annotations

import dataclasses
import itertools
import re

import pytest

from ivr.agent.service import summarize
from ivr.journey.errors import StoreUnavailable
from ivr.journey.memory import MemoryJourney
from ivr.sms.config import parse_sms_config
from ivr.sms.dlr import DeliveryReport
from ivr.sms.errors import RateLimited
from ivr.sms.segments import measure
from ivr.sms.service import OPT_OUT_NAMESPACE, InboundSms, SmsReply, SmsService

from .conftest import ANNA, IVAN, OLGA, UNKNOWN, FakeClock, SwitchableDirectory, with_config
from .test_config import MINIMAL

PAVEL = "+79996660013"  # has no roaming service at all
_ids = itertools.count(1)


async def text(service: SmsService, sender: str, body: str, message_id: str | None = None) -> SmsReply:
    return await service.handle(InboundSms(sender, "1000", body, message_id or f"m{next(_ids)}", "fake"))


async def test_balance_replies_with_the_customers_balance(service: SmsService) -> None:
    reply = await text(service, ANNA, "BAL")
    assert reply.text == "Your balance is 15,420.75 RUB."
    assert (reply.command, reply.language, reply.journey_key) == ("balance", "en", "C-100231")


async def test_cyrillic_look_alike_keyword_gets_the_same_reply(service: SmsService) -> None:
    assert (await text(service, ANNA, "ВАL")).text == "Your balance is 15,420.75 RUB."


async def test_latin_keyword_replies_in_the_customers_language(service: SmsService) -> None:
    reply = await text(service, OLGA, "bal")
    assert (reply.language, reply.text) == ("ru", "Ваш баланс: 340.00 RUB.")


async def test_russian_alias_replies_in_russian(service: SmsService) -> None:
    reply = await text(service, ANNA, "Баланс")
    assert (reply.language, reply.text) == ("ru", "Ваш баланс: 15,420.75 RUB.")


async def test_unknown_command_gets_the_help_text(service: SmsService) -> None:
    reply = await text(service, ANNA, "hello there")
    assert reply.command is None
    assert reply.template == "help"
    assert reply.text.startswith("Text BAL for your balance")


async def test_unknown_cyrillic_text_gets_russian_help(service: SmsService) -> None:
    reply = await text(service, UNKNOWN, "привет")
    assert (reply.language, reply.template) == ("ru", "help")


async def test_help_always_names_a_person_to_call(service: SmsService) -> None:
    for language, sample in (("en", "HELP"), ("ru", "ПОМОЩЬ")):
        reply = await text(service, ANNA, sample)
        assert reply.language == language
        assert re.search(r"\b100\b", reply.text)  # the operator line


async def test_unknown_number_asking_for_balance_is_told_it_is_not_a_customer(service: SmsService) -> None:
    reply = await text(service, UNKNOWN, "BAL")
    assert reply.template == "reply.not_customer"
    assert reply.journey_key == UNKNOWN


async def test_crm_down_gives_the_failed_reply(service: SmsService, directory: SwitchableDirectory) -> None:
    directory.down = True
    reply = await text(service, ANNA, "BAL")
    assert reply.template == "reply.failed"
    assert re.search(r"\b100\b", reply.text)  # the operator line


async def test_plain_reply_works_while_the_crm_is_down(service: SmsService, directory: SwitchableDirectory) -> None:
    directory.down = True
    assert (await text(service, ANNA, "HELP")).template == "help"


async def test_roam_on_switches_roaming_on(service: SmsService, directory: SwitchableDirectory) -> None:
    reply = await text(service, IVAN, "ROAM ON")
    assert reply.text == "Roaming is now on. Text ROAM OFF to turn it off."
    customer = await directory.by_number(IVAN)
    assert customer is not None and customer.services["roaming"] is True


async def test_roam_on_when_already_on_says_so(service: SmsService) -> None:
    assert (await text(service, ANNA, "roaming on")).text.startswith("Roaming was already on.")


async def test_a_retried_message_gives_the_same_reply_and_changes_nothing_twice(service: SmsService) -> None:
    first = await text(service, IVAN, "ROAM ON", message_id="same-id")
    again = await text(service, IVAN, "ROAM ON", message_id="same-id")
    assert first.text == again.text == "Roaming is now on. Text ROAM OFF to turn it off."


async def test_roam_off_in_russian(service: SmsService) -> None:
    reply = await text(service, ANNA, "РОУМИНГ ВЫКЛ")
    assert (reply.language, reply.text) == ("ru", "Роуминг выключен.")


async def test_refused_action_gives_the_failed_reply(service: SmsService) -> None:
    assert (await text(service, PAVEL, "ROAM ON")).template == "reply.failed"


async def test_tariff_lists_the_tariffs_and_the_customers_own(service: SmsService) -> None:
    reply = await text(service, IVAN, "TARIFF")
    assert reply.template == "tariffs"
    assert "Yours is Start." in reply.text


async def test_tariff_with_a_name_changes_the_tariff(service: SmsService, directory: SwitchableDirectory) -> None:
    reply = await text(service, IVAN, "tariff smart")
    assert reply.text == "Your tariff is now Smart."
    customer = await directory.by_number(IVAN)
    assert customer is not None and customer.tariff == "Smart"


async def test_tariff_with_an_unknown_name_changes_nothing(service: SmsService,
                                                           directory: SwitchableDirectory) -> None:
    reply = await text(service, IVAN, "TARIFF Platinum")
    assert reply.text == "There is no tariff Platinum. Text TARIFF for the list."
    customer = await directory.by_number(IVAN)
    assert customer is not None and customer.tariff == "Start"


async def test_stop_opts_the_number_out(service: SmsService, sms_journey: MemoryJourney) -> None:
    await text(service, IVAN, "STOP")
    assert await sms_journey.kv_get(OPT_OUT_NAMESPACE, IVAN) is not None
    assert await service.opted_out(IVAN)


async def test_start_opts_the_number_back_in(service: SmsService) -> None:
    await text(service, IVAN, "STOP")
    await text(service, IVAN, "СТАРТ")
    assert not await service.opted_out(IVAN)


async def test_journey_records_received_and_sent_under_the_customer(service: SmsService,
                                                                   sms_journey: MemoryJourney) -> None:
    reply = await text(service, ANNA, "BAL")
    events = sms_journey.events("C-100231")
    assert [e.type for e in events] == ["sms_received", "caller_identified", "action_result", "sms_sent"]
    assert {e.channel for e in events} == {"sms"}
    assert {e.interaction for e in events} == {reply.interaction}
    assert (events[0].data["text"], events[0].data["command"]) == ("BAL", "balance")
    assert (events[-1].data["text"], events[-1].data["template"]) == (reply.text, "balance")


async def test_journey_of_an_unknown_number_is_kept_under_the_number(service: SmsService,
                                                                    sms_journey: MemoryJourney) -> None:
    await text(service, UNKNOWN, "hello")
    assert [e.type for e in sms_journey.events(UNKNOWN)] == ["sms_received", "sms_sent"]


async def test_the_agent_screen_pop_summarises_our_events(service: SmsService, sms_journey: MemoryJourney) -> None:
    await text(service, ANNA, "BAL")
    received, _, _, sent = sms_journey.events("C-100231")
    assert summarize(received) == "texted 'BAL'"
    assert summarize(sent) == "received an SMS: 'Your balance is 15,420.75 RUB.'"


async def test_a_journey_store_that_is_down_costs_the_record_not_the_reply(service: SmsService,
                                                                           sms_journey: MemoryJourney) -> None:
    async def broken(key: str, events: object) -> None:
        raise StoreUnavailable("memory", "append", OSError("disk full"))

    sms_journey.append = broken  # type: ignore[method-assign]
    assert (await text(service, ANNA, "BAL")).text == "Your balance is 15,420.75 RUB."


async def test_a_long_reply_is_shortened_to_the_segment_budget(service: SmsService) -> None:
    short = with_config(service, max_segments=1)
    reply = await text(short, ANNA, "ПОМОЩЬ")  # the Russian help text takes 3 UCS-2 segments
    assert reply.text.endswith("…")
    assert reply.segments.count == measure(reply.text).count == 1
    full = service.config.commands["help"].reply.sources["ru"]
    assert full.startswith(reply.text[:-1])


async def test_a_template_that_breaks_for_this_customer_gives_the_failed_reply(service: SmsService) -> None:
    config = parse_sms_config(MINIMAL.replace('reply: {en: "Help."', 'reply: {en: "Hi {{ customer.name }}"'))
    broken = SmsService(config, service.lookup, service.actions, service.journey, clock=service.clock)
    reply = await text(broken, UNKNOWN, "HELP")  # an unknown number has no customer.name
    assert (reply.template, reply.text) == ("reply.failed", "Failed.")


async def test_more_messages_than_the_rate_are_refused(service: SmsService) -> None:
    for _ in range(service.config.limits.rate_count):
        await text(service, ANNA, "HELP")
    with pytest.raises(RateLimited):
        await text(service, ANNA, "HELP")


async def test_the_rate_limit_is_per_number(service: SmsService) -> None:
    for _ in range(service.config.limits.rate_count):
        await text(service, ANNA, "HELP")
    assert (await text(service, IVAN, "HELP")).template == "help"


async def test_the_rate_limit_lifts_after_the_window(service: SmsService, sms_clock: FakeClock) -> None:
    for _ in range(service.config.limits.rate_count):
        await text(service, ANNA, "HELP")
    sms_clock.advance(service.config.limits.rate_window_s + 0.1)
    assert (await text(service, ANNA, "HELP")).template == "help"


async def test_a_refused_message_is_not_recorded(service: SmsService, sms_journey: MemoryJourney) -> None:
    limited = with_config(service, limits=dataclasses.replace(service.config.limits, rate_count=1))
    await text(limited, ANNA, "HELP")
    with pytest.raises(RateLimited):
        await text(limited, ANNA, "HELP")
    assert [e.type for e in sms_journey.events("C-100231")] == ["sms_received", "caller_identified", "sms_sent"]


async def test_delivery_report_is_recorded_on_the_interaction(service: SmsService, sms_journey: MemoryJourney) -> None:
    await service.delivery(DeliveryReport("sms-m1", "C-100231", 1))
    (event,) = sms_journey.events("C-100231")
    assert (event.type, event.interaction, event.data) == ("sms_delivery", "sms-m1", {"status": "delivered", "code": 1})


async def test_failed_delivery_keeps_the_smsc_reason(service: SmsService, sms_journey: MemoryJourney) -> None:
    await service.delivery(DeliveryReport("sms-m1", "C-100231", 16, "NACK/0x0b/Invalid Destination Address"))
    (event,) = sms_journey.events("C-100231")
    assert event.data["status"] == "rejected"
    assert event.data["reason"].startswith("NACK")
