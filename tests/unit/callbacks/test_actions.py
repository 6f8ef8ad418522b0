"""The ``callback`` action: the routing rules place it as they would a caller who waits."""

from __future__ import annotations

from pathlib import Path

from ivr.callbacks.actions import CallbackActions
from ivr.callbacks.book import CallbackBook
from ivr.callbacks.policy import CallbackPolicy
from ivr.callbacks.service import CallbackService
from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult
from ivr.journey.memory import MemoryJourney
from ivr.routing.rules import load_routing
from ivr.routing.service import RoutingService

ROUTING = Path(__file__).resolve().parents[3] / "config" / "routing.yaml"


class Crm:
    async def run(self, name, args, context, *, interaction):
        return ActionResult(name, True, {"from": "crm"})


def actions(store: MemoryJourney, channel: str = "ussd") -> CallbackActions:
    config = load_routing(ROUTING)
    return CallbackActions(Crm(), CallbackService(CallbackBook(store), CallbackPolicy), RoutingService(lambda: config),
                           channel=channel, default_queue=lambda: "support")


def caller(**customer) -> CallerContext:
    return CallerContext(customer=customer, caller={"number": "+79992088812"})


async def test_other_actions_go_to_the_crm() -> None:
    result = await actions(MemoryJourney()).run("balance", {}, caller(id="C-1"), interaction="s-1")
    assert result.data == {"from": "crm"}


async def test_a_debtors_callback_goes_to_collections_with_the_rules_priority() -> None:
    store = MemoryJourney()
    result = await actions(store).run("callback", {"queue": "support"},
                                      caller(id="C-7", overdue_days=45, debt=1200), interaction="s-1")

    assert result.ok and result.data["queue"] == "collections"
    [booked] = await CallbackBook(store).open()
    assert (booked.queue, booked.priority, booked.channel, booked.key) == ("collections", 5, "ussd", "C-7")


async def test_a_blacklisted_number_is_not_offered_a_callback() -> None:
    result = await actions(MemoryJourney()).run("callback", {"queue": "support"}, caller(id="C-9", blacklisted=True),
                                                interaction="s-1")
    assert not result.ok and result.data["why"] == "refused"


async def test_another_number_keyed_in_is_the_one_called() -> None:
    store = MemoryJourney()
    result = await actions(store, "voice").run("callback", {"queue": "support", "number": "84951234567"},
                                               caller(id="C-1"), interaction="call-1")
    assert result.ok and result.data["number"] == "+74951234567"


async def test_at_night_a_callback_is_routed_as_at_the_opening_and_due_then() -> None:
    import dataclasses
    import datetime as dt

    from ivr.routing.hours import BusinessHours, parse_spans

    config = load_routing(ROUTING)
    nine_to_six = {day: parse_spans("09:00-18:00") for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    config = dataclasses.replace(config, hours=BusinessHours("UTC", nine_to_six))
    night = dt.datetime(2027, 3, 3, 23, 0, tzinfo=dt.UTC)
    opening = dt.datetime(2027, 3, 4, 9, 0, tzinfo=dt.UTC).timestamp()
    store = MemoryJourney()
    service = CallbackService(CallbackBook(store), CallbackPolicy,
                              opens_at=lambda _queue, _now: opening, clock=lambda: night.timestamp())
    night_actions = CallbackActions(Crm(), service, RoutingService(lambda: config, clock=lambda: night),
                                    channel="sms", default_queue=lambda: "support", timezone=lambda: "UTC")

    result = await night_actions.run("callback", {"queue": "support"}, caller(id="C-1"), interaction="sms-1")

    assert result.ok and result.data["scheduled"] and result.data["opens"] == "09:00"
    [booked] = await CallbackBook(store).open()
    assert booked.due_at == opening
