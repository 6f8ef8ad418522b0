"""An SMS command that runs a declared action: the rest of the text is its argument (ORDER 12345),
and a failure gets the command's own reply, which can tell "no such order" from "try later"."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from ivr.crm.lookup import CrmLookup
from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult
from ivr.journey.memory import MemoryJourney
from ivr.sms.config import SmsConfig, parse_sms_config
from ivr.sms.errors import SmsConfigInvalid
from ivr.sms.service import InboundSms, SmsService
from tests.demo_actions import DEMO_ACTIONS

from .conftest import ANNA, RecordingSender, SwitchableDirectory

_ids = itertools.count(1)


class OrderDesk:
    """order_status as a service would answer it: 12345 exists, 99999 is slow, others are unknown."""

    def __init__(self) -> None:
        self.asked: list[Mapping[str, Any]] = []

    async def run(self, name: str, args: Mapping[str, Any], context: CallerContext,
                  *, interaction: str) -> ActionResult:
        self.asked.append(dict(args))
        order = str(args.get("order"))
        if not order.isdigit():
            return ActionResult(name, False, {"reason": "invalid", "error": "'order' must be digits only"})
        if order == "12345":
            return ActionResult(name, True, {"status": "shipped", "eta": "2026-12-08"})
        if order == "99999":
            return ActionResult(name, False, {"reason": "timeout", "error": "no answer"})
        return ActionResult(name, False, {"reason": "refused", "error": "No such order."})


@pytest.fixture
def desk() -> OrderDesk:
    return OrderDesk()


@pytest.fixture
def service(sms_config: SmsConfig, directory: SwitchableDirectory, sms_clock, desk: OrderDesk) -> SmsService:
    lookup = CrmLookup(directory, cache_ttl_s=0.0001, negative_ttl_s=0.0001)
    return SmsService(sms_config, lookup, desk, MemoryJourney(clock=sms_clock), sender=RecordingSender(),
                      clock=sms_clock)


async def text(service: SmsService, body: str) -> str:
    return (await service.handle(InboundSms(ANNA, "1000", body, f"m{next(_ids)}", "fake"))).text


@pytest.mark.parametrize(("sms", "reply"), [
    ("ORDER 12345", "Order 12345 is shipped, expected on 2026-12-08."),
    ("order 55555", "We found no order 55555."),
    ("ORDER 99999", "Order status is not available right now. Please try again later."),
    ("ORDER abc", "An order number has 5 to 10 digits, e.g. ORDER 12345."),
    ("ЗАКАЗ 12345", "Заказ 12345: shipped, ожидается 2026-12-08."),
])
async def test_order_status_by_sms(service: SmsService, desk: OrderDesk, sms: str, reply: str) -> None:
    assert await text(service, sms) == reply


async def test_the_action_gets_what_was_written_after_the_keyword(service: SmsService, desk: OrderDesk) -> None:
    await text(service, "ORDER 12345")

    assert desk.asked == [{"order": "12345"}]


def test_a_command_naming_an_action_nobody_declared_is_refused_at_load_time() -> None:
    config = """version: 1
languages: [en]
default_language: en
fallback: help
replies:
  not_customer: {en: "Not a customer."}
  failed: {en: "Failed."}
commands:
  help:
    keywords: {en: [HELP]}
    reply: {en: "Help."}
  order:
    keywords: {en: [ORDER]}
    argument: {name: order, free: true, invalid: {en: "Order what?"}}
    action: order_state
    reply: {en: "ok"}
"""
    with pytest.raises(SmsConfigInvalid, match="unknown action 'order_state'; did you mean 'order_status'"):
        parse_sms_config(config, known_actions=DEMO_ACTIONS)
