"""What a subscriber sees on their handset, request by request, through POST /ussd."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from ivr.crm.directory_ports import SERVICE_ON
from ivr.crm.lookup import CrmLookup
from ivr.crm.sqlite_directory import SqliteDirectory
from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult
from ivr.journey.memory import MemoryJourney
from ivr.live.trees import TreeStore
from ivr.ussd import UssdConfig, UssdGateway
from tests.clock import FakeClock
from tests.unit.ussd.conftest import (
    ANNA,
    IVAN,
    UNKNOWN,
    CountingActions,
    Phone,
    screen,
    serve,
    with_changes,
)

Client = TestClient[web.Request, web.Application]


async def test_star_100_answers_the_balance_in_one_end_screen(phone: Callable[..., Phone]) -> None:
    reply = await phone(ANNA).dial("*100#")
    assert reply == "END Your balance is 15,420.75 RUB."


async def test_star_100_tells_an_unknown_number_it_is_not_registered(phone: Callable[..., Phone]) -> None:
    reply = await phone(UNKNOWN).dial("*100#")
    assert reply == "END Sorry, this number is not registered with us."


async def test_the_reply_is_plain_text(ussd: Client) -> None:
    response = await ussd.post("/ussd", data={"sessionId": "s1", "serviceCode": "*100#", "phoneNumber": ANNA,
                                              "text": ""})
    assert response.status == 200
    assert response.content_type == "text/plain"


async def test_star_111_opens_the_main_menu_with_a_personal_greeting(phone: Callable[..., Phone]) -> None:
    reply = await phone(ANNA).dial("*111#")
    assert reply.startswith("CON Hello, Anna! Welcome to Nova Telecom.\nNova Telecom\n1. Balance")
    assert reply.endswith("0. Operator")


async def test_pressing_1_in_the_main_menu_shows_the_balance_and_the_menu_again(phone: Callable[..., Phone]) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")
    reply = await anna.send("1")
    assert reply.startswith("CON Your balance is 15,420.75 RUB.\nNova Telecom\n1. Balance")


async def test_a_service_change_asks_for_confirmation_first(phone: Callable[..., Phone],
                                                            actions: CountingActions) -> None:
    ivan = phone(IVAN)
    await ivan.dial("*111#")
    assert "1. Caller ID on" in await ivan.send("3")
    reply = await ivan.send("1")
    assert reply == ("CON Caller ID costs 2 roubles a day. To turn it on, press 1. To cancel, press 2.\n"
                     "1. Yes\n2. No")
    assert actions.count(SERVICE_ON) == 0


async def test_a_confirmed_service_change_is_written_to_the_crm(phone: Callable[..., Phone],
                                                                directory: SqliteDirectory) -> None:
    ivan = phone(IVAN)
    await ivan.dial("*111#")
    for key in ("3", "1"):
        await ivan.send(key)
    reply = await ivan.send("1")
    assert reply.startswith("CON Done. The change takes effect within five minutes.")
    customer = await directory.by_number(IVAN)
    assert customer is not None and customer.services["caller_id"] is True


async def test_a_repeated_request_gets_the_same_screen_and_writes_once(phone: Callable[..., Phone],
                                                                       actions: CountingActions) -> None:
    ivan = phone(IVAN)
    await ivan.dial("*111#")
    await ivan.send("3")
    await ivan.send("1")
    first = await ivan.send("1")
    again = await ivan.post()
    assert again == first
    assert actions.count(SERVICE_ON) == 1


async def test_concurrent_repeats_of_a_confirmation_write_once(phone: Callable[..., Phone],
                                                               actions: CountingActions) -> None:
    ivan = phone(IVAN)
    await ivan.dial("*111#")
    await ivan.send("3")
    await ivan.send("1")
    ivan.inputs.append("1")
    replies = await asyncio.gather(*(ivan.post() for _ in range(5)))
    assert len(set(replies)) == 1
    assert actions.count(SERVICE_ON) == 1


async def test_the_action_uses_the_ussd_session_as_its_interaction(phone: Callable[..., Phone],
                                                                   actions: CountingActions) -> None:
    ivan = phone(IVAN)
    await ivan.dial("*111#")
    for key in ("3", "1", "1"):
        await ivan.send(key)
    assert actions.calls == [(SERVICE_ON, {"service": "caller_id"}, ivan.session_id)]


async def test_star_111_star_2_deep_links_to_tariffs(phone: Callable[..., Phone]) -> None:
    reply = await phone(ANNA).dial("*111*2#")
    assert reply == "CON Tariffs\n1. My tariff\n2. All tariffs\n9. Back\n0. Operator"


async def test_a_deep_link_goes_on_like_any_session(phone: Callable[..., Phone]) -> None:
    anna = phone(ANNA)
    await anna.dial("*111*2#")
    assert (await anna.send("1")).startswith("CON Your tariff is Max.")


async def test_an_unknown_session_with_inputs_replays_them_as_a_dial_through(phone: Callable[..., Phone]) -> None:
    # Aggregators deliver "*111*2#" as serviceCode "*111#" with text "2" on the first request.
    anna = phone(ANNA)
    anna.session_id, anna.code, anna.inputs = "ATUid_dial_through", "*111#", ["2"]
    reply = await anna.post()
    assert reply == "CON Tariffs\n1. My tariff\n2. All tariffs\n9. Back\n0. Operator"


async def test_a_screen_over_182_characters_is_paged_with_more(phone: Callable[..., Phone]) -> None:
    ivan = phone(IVAN)  # greeting + debt notice + a six-option menu: 188 characters in one piece
    first = await ivan.dial("*111#")
    assert first.startswith("CON ") and len(screen(first)) <= 182
    assert screen(first).endswith("#. More")
    second = await ivan.send("#")
    assert "5. How to pay" in second and second.endswith("00. Previous")
    assert len(screen(second)) <= 182


async def test_back_returns_to_the_previous_page(phone: Callable[..., Phone]) -> None:
    ivan = phone(IVAN)
    first = await ivan.dial("*111#")
    await ivan.send("#")
    assert await ivan.send("00") == first


async def test_a_menu_option_is_accepted_on_any_page(phone: Callable[..., Phone]) -> None:
    ivan = phone(IVAN)
    await ivan.dial("*111#")
    assert (await ivan.send("2")).startswith("CON Tariffs\n")


async def test_a_long_text_before_a_menu_is_paged_and_nothing_is_lost(phone: Callable[..., Phone]) -> None:
    anna = phone(ANNA)
    await anna.dial("*111*2#")
    pages = [await anna.send("2")]
    while screen(pages[-1]).endswith("#. More"):
        pages.append(await anna.send("#"))
    assert all(len(screen(p)) <= 182 for p in pages)
    shown = " ".join(screen(p) for p in pages)
    assert "Max: unlimited data and calls for 990 roubles." in shown
    assert pages[-1].endswith("0. Operator\n00. Previous")


async def test_asking_for_an_operator_ends_the_session_with_how_to_reach_one(phone: Callable[..., Phone]) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")
    assert await anna.send("0") == "END To talk to an operator, please call 100."


OFFER = "CON You left a menu unfinished.\n1. Continue\n2. Start over"
TARIFFS = "CON Tariffs\n1. My tariff\n2. All tariffs\n9. Back\n0. Operator"


async def broken_off_after(subscriber: Phone, key: str, clock: FakeClock) -> str:
    """Dial *111#, press ``key``, then the network drops the session for 30 s; the screen it was on."""
    await subscriber.dial("*111#")
    on_screen = await subscriber.send(key)
    clock.advance(30)
    return on_screen


async def test_a_new_dial_after_a_broken_session_offers_to_continue(phone: Callable[..., Phone],
                                                                    clock: FakeClock) -> None:
    anna = phone(ANNA)
    await broken_off_after(anna, "2", clock)  # in Tariffs when the network drops the session
    assert await anna.dial("*111#") == OFFER


async def test_continue_shows_the_screen_the_subscriber_was_on(phone: Callable[..., Phone],
                                                               clock: FakeClock) -> None:
    anna = phone(ANNA)
    tariffs = await broken_off_after(anna, "2", clock)
    await anna.dial("*111#")
    assert await anna.send("1") == tariffs
    assert (await anna.send("1")).startswith("CON Your tariff is Max.")


async def test_start_over_opens_the_main_menu(phone: Callable[..., Phone], clock: FakeClock) -> None:
    anna = phone(ANNA)
    main = await anna.dial("*111#")
    await anna.send("2")
    clock.advance(30)
    await anna.dial("*111#")
    assert await anna.send("2") == main


async def test_after_start_over_the_old_session_is_not_offered_again(phone: Callable[..., Phone],
                                                                     clock: FakeClock) -> None:
    anna = phone(ANNA)
    main = await anna.dial("*111#")
    await anna.send("2")
    clock.advance(30)
    await anna.dial("*111#")
    await anna.send("2")
    clock.advance(10)
    assert await anna.dial("*111#") == main


async def test_a_deep_link_after_a_broken_session_goes_where_it_says(phone: Callable[..., Phone],
                                                                     clock: FakeClock) -> None:
    # "*111*2#" names Tariffs, as the same dial delivered as "*111#" with text "2" does.
    anna = phone(ANNA)
    await broken_off_after(anna, "3", clock)  # in Services
    assert await anna.dial("*111*2#") == TARIFFS


async def test_the_broken_session_is_still_offered_after_a_deep_link(phone: Callable[..., Phone],
                                                                    clock: FakeClock) -> None:
    anna = phone(ANNA)
    await broken_off_after(anna, "3", clock)
    await anna.dial("*111*2#")  # a look at the tariffs, ended at once by the network
    clock.advance(10)
    assert await anna.dial("*111#") == OFFER


async def test_a_deep_linked_session_with_inputs_of_its_own_is_the_one_offered(phone: Callable[..., Phone],
                                                                               clock: FakeClock) -> None:
    anna = phone(ANNA)
    await broken_off_after(anna, "3", clock)
    await anna.dial("*111*2#")
    my_tariff = await anna.send("1")  # then the network drops this one too
    clock.advance(10)
    assert await anna.dial("*111#") == OFFER
    assert await anna.send("1") == my_tariff


async def test_no_offer_once_the_resume_window_has_passed(phone: Callable[..., Phone], clock: FakeClock,
                                                          config: UssdConfig) -> None:
    anna = phone(ANNA)
    main = await anna.dial("*111#")
    await anna.send("2")
    clock.advance(config.session.resume_window_s + 1)
    assert await anna.dial("*111#") == main


async def test_no_offer_for_a_session_that_ended(phone: Callable[..., Phone], clock: FakeClock) -> None:
    anna = phone(ANNA)
    main = await anna.dial("*111#")
    await anna.send("0")  # operator: END
    clock.advance(10)
    assert await anna.dial("*111#") == main


async def test_a_resumed_action_is_not_run_again(phone: Callable[..., Phone], clock: FakeClock,
                                                 actions: CountingActions) -> None:
    ivan = phone(IVAN)
    await ivan.dial("*111#")
    for key in ("3", "1", "1"):
        await ivan.send(key)  # caller ID turned on, back in Services
    clock.advance(20)
    await ivan.dial("*111#")
    reply = await ivan.send("1")
    assert reply.startswith("CON Done. The change takes effect within five minutes.")
    assert actions.count(SERVICE_ON) == 1


async def test_a_session_idle_for_180_s_has_timed_out(phone: Callable[..., Phone], clock: FakeClock) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")
    clock.advance(181)
    assert await anna.send("2") == "END Your session has timed out. Please dial *111# again."


async def test_a_session_answering_within_180_s_goes_on(phone: Callable[..., Phone], clock: FakeClock) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")
    clock.advance(179)
    assert (await anna.send("2")).startswith("CON Tariffs")


async def test_the_record_leaves_the_kv_store_after_timeout_and_resume_window(
        phone: Callable[..., Phone], clock: FakeClock, journey: MemoryJourney, config: UssdConfig) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")
    assert await journey.kv_get("ussd", anna.session_id) is not None
    clock.advance(config.session.timeout_s + config.session.resume_window_s + 1)
    assert await journey.kv_get("ussd", anna.session_id) is None


async def test_a_hanging_crm_gets_a_quick_try_again_later(config: UssdConfig, trees: TreeStore,
                                                          journey: MemoryJourney, clock: FakeClock) -> None:
    class HangingDirectory:
        async def by_number(self, e164: str) -> None:
            await asyncio.Event().wait()

    gateway = UssdGateway(config, trees, CrmLookup(HangingDirectory(), budget_s=0.2), _NoActions(), journey,
                          clock=clock)
    client = await serve(gateway)
    try:
        started = asyncio.get_running_loop().time()
        for code in ("*100#", "*111#"):
            reply = await Phone(client, ANNA).dial(code)
            assert reply == "END Sorry, the service is busy. Please try again later."
        assert asyncio.get_running_loop().time() - started < 1.0
    finally:
        await client.close()


async def test_anything_slower_than_the_deadline_gets_try_again_later(config: UssdConfig, trees: TreeStore,
                                                                      journey: MemoryJourney,
                                                                      clock: FakeClock) -> None:
    class NeverAnswers:  # a lookup without a budget of its own
        async def lookup(self, raw: str | None) -> None:
            await asyncio.Event().wait()

    fast = with_changes(config, limits={"deadline_s": 0.3})
    client = await serve(UssdGateway(fast, trees, NeverAnswers(), _NoActions(), journey, clock=clock))  # type: ignore[arg-type]
    try:
        started = asyncio.get_running_loop().time()
        reply = await Phone(client, ANNA).dial("*111#")
        assert reply == "END Sorry, the service is busy. Please try again later."
        assert asyncio.get_running_loop().time() - started < 1.0
    finally:
        await client.close()


async def test_an_unknown_service_code_ends_politely(phone: Callable[..., Phone]) -> None:
    assert await phone(ANNA).dial("*999#") == "END Sorry, this service code is not in use."


async def test_too_many_requests_from_one_number_get_an_end_screen(config: UssdConfig, trees: TreeStore,
                                                                   lookup: CrmLookup, actions: CountingActions,
                                                                   journey: MemoryJourney, clock: FakeClock) -> None:
    strict = with_changes(config, rate_limit={"burst": 2, "per_minute": 1})
    client = await serve(UssdGateway(strict, trees, lookup, actions, journey, clock=clock))
    try:
        anna = Phone(client, ANNA)
        await anna.dial("*111#")
        await anna.send("2")
        assert await anna.send("1") == "END Too many requests. Please wait a minute and try again."
        assert anna.status == 200
        assert (await Phone(client, IVAN).dial("*100#")).startswith("END Your balance is")
    finally:
        await client.close()


async def test_the_journey_records_the_request_the_steps_and_the_screens(phone: Callable[..., Phone],
                                                                         journey: MemoryJourney) -> None:
    ivan = phone(IVAN)
    await ivan.dial("*111#")
    for key in ("3", "1", "1"):
        await ivan.send(key)
    events = journey.events("C-208812")
    types = [e.type for e in events]
    assert types[0] == "ussd_request" and events[0].data == {"code": "*111#", "service": "self-service menu",
                                                            "input": ""}
    assert "caller_identified" in types
    result = next(e.data for e in events if e.type == "action_result")
    assert (result["name"], result["ok"]) == ("service_on", True)
    assert types.count("ussd_screen") == 4
    assert all(e.channel == "ussd" and e.interaction == ivan.session_id for e in events)


async def test_the_balance_lands_in_the_journey_as_the_screen_pop_reads_it(phone: Callable[..., Phone],
                                                                           journey: MemoryJourney) -> None:
    from ivr.agent.service import summarize

    await phone(ANNA).dial("*100#")
    summaries = [summarize(e) for e in journey.events("C-100231")]
    assert summaries[0] == "checked balance by USSD *100#"
    assert "saw USSD screen 'Your balance is 15,420.75 RUB.'" in summaries


async def test_a_pin_typed_on_ussd_is_not_kept_in_the_session_record(phone: Callable[..., Phone],
                                                                     journey: MemoryJourney) -> None:
    stranger = phone(UNKNOWN)
    await stranger.dial("*111#")
    await stranger.send("8")
    await stranger.send("123456")
    await stranger.send("9876")  # the masked PIN
    record = await journey.kv_get("ussd", stranger.session_id)
    assert record is not None and "9876" not in str(record)


async def test_a_pin_in_a_dial_through_is_not_kept_in_the_journey(phone: Callable[..., Phone],
                                                                   journey: MemoryJourney) -> None:
    stranger = phone(UNKNOWN)
    stranger.session_id, stranger.code, stranger.inputs = "ATUid_pin_dial", "*111#", ["8", "123456", "9876"]
    assert (await stranger.post()).startswith("CON Sorry, that account number and PIN do not match.")
    assert "9876" not in str([e.data for e in journey.events(UNKNOWN)])
    assert "9876" not in str(await journey.kv_get("ussd", stranger.session_id))


async def test_a_session_goes_on_after_a_masked_input(phone: Callable[..., Phone]) -> None:
    stranger = phone(UNKNOWN)
    await stranger.dial("*111#")
    for key in ("8", "123456", "9876"):
        after_pin = await stranger.send(key)
    assert await stranger.post() == after_pin
    assert (await stranger.send("2")).startswith("CON Tariffs")


class _NoActions:
    async def run(self, name: str, args: Mapping[str, Any], context: CallerContext, *,
                  interaction: str) -> ActionResult:
        raise AssertionError("no action expected")


async def test_the_resume_offer_keys_come_from_the_configuration(
        config: UssdConfig, trees: TreeStore, lookup: CrmLookup, actions: CountingActions, journey: MemoryJourney,
        clock: FakeClock) -> None:
    keyed = dataclasses.replace(config, keys=dataclasses.replace(config.keys, resume="7", restart="8"))
    client = await serve(UssdGateway(keyed, trees, lookup, actions, journey, clock=clock))
    try:
        anna = Phone(client, ANNA)
        await broken_off_after(anna, "3", clock)  # in Services when the network drops the session
        offer = await anna.dial("*111#")
        assert offer.endswith("7. Continue\n8. Start over")
        assert (await anna.send("7")).startswith("CON Services")
    finally:
        await client.close()


async def test_after_an_action_changes_the_customer_the_menu_shows_them_as_they_are_now(
        phone: Callable[..., Phone]) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")
    assert "1. Caller ID off" in await anna.send("3")  # Services
    await anna.send("1")  # switch caller ID off...
    after = await anna.send("1")  # ...confirmed
    assert "Done." in after
    assert "1. Caller ID on" in after and "Caller ID off" not in after
