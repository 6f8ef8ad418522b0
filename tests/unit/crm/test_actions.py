"""CrmActions: the ActionService the drivers call for named actions, over a customer directory."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ivr.crm.actions import CrmActions, idempotency_key
from ivr.crm.breaker import CircuitBreaker
from ivr.crm.directory_ports import ActionOutcome
from ivr.crm.errors import CrmUnavailable
from ivr.crm.ports import ActionService
from ivr.crm.sqlite_directory import SqliteDirectory
from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult
from tests.unit.crm.fakes import FakeDirectory, anna

DEBTOR = CallerContext(customer={"id": "C-208812", "number": "+79992088812"}, caller={"number": "+79992088812"})
UNKNOWN = CallerContext(caller={"number": "+79990001122"})


@pytest.fixture
def sqlite(demo_directory: SqliteDirectory) -> SqliteDirectory:
    return demo_directory


def test_crm_actions_is_an_action_service(sqlite: SqliteDirectory) -> None:
    service: ActionService = CrmActions(sqlite)
    assert service is not None


async def test_service_on_turns_the_service_on(sqlite: SqliteDirectory) -> None:
    result = await CrmActions(sqlite).run("service_on", {"service": "roaming"}, DEBTOR, interaction="call-1")
    assert (result.name, result.ok, result.data) == ("service_on", True,
                                                     {"service": "roaming", "enabled": True, "changed": True})
    customer = await sqlite.by_number("+79992088812")
    assert customer is not None and customer.services["roaming"]


async def test_balance_answers_what_the_balance_prompt_reads(sqlite: SqliteDirectory) -> None:
    result = await CrmActions(sqlite).run("balance", {}, DEBTOR, interaction="call-1")
    assert result.ok and result.data == {"balance": Decimal("-1250.00"), "currency": "RUB"}


async def test_the_same_action_twice_in_one_interaction_is_applied_once(sqlite: SqliteDirectory) -> None:
    actions = CrmActions(sqlite)
    await actions.run("service_on", {"service": "roaming"}, DEBTOR, interaction="call-1")
    await sqlite.run_action("service_off", {"service": "roaming"}, "C-208812", "admin-change")
    again = await actions.run("service_on", {"service": "roaming"}, DEBTOR, interaction="call-1")
    assert again.ok
    customer = await sqlite.by_number("+79992088812")
    assert customer is not None and not customer.services["roaming"]


async def test_the_same_action_in_another_interaction_is_applied_again(sqlite: SqliteDirectory) -> None:
    actions = CrmActions(sqlite)
    await actions.run("service_on", {"service": "roaming"}, DEBTOR, interaction="call-1")
    await sqlite.run_action("service_off", {"service": "roaming"}, "C-208812", "admin-change")
    await actions.run("service_on", {"service": "roaming"}, DEBTOR, interaction="call-2")
    customer = await sqlite.by_number("+79992088812")
    assert customer is not None and customer.services["roaming"]


def test_the_idempotency_key_is_interaction_name_and_args_in_any_order() -> None:
    one = idempotency_key("call-1", "service_on", {"service": "roaming", "x": 1})
    assert one == idempotency_key("call-1", "service_on", {"x": 1, "service": "roaming"})
    assert one.startswith("call-1:service_on:")
    assert one != idempotency_key("call-1", "service_on", {"service": "voicemail", "x": 1})


def test_the_idempotency_key_does_not_spell_out_the_args() -> None:
    assert "4321" not in idempotency_key("call-1", "verify", {"pin": "4321"})


async def test_an_unknown_action_fails_with_an_error(sqlite: SqliteDirectory) -> None:
    result = await CrmActions(sqlite).run("block_card", {}, DEBTOR, interaction="call-1")
    assert result == ActionResult("block_card", False, {"error": "unknown action 'block_card'"})


async def test_an_unidentified_caller_cannot_run_actions(sqlite: SqliteDirectory) -> None:
    result = await CrmActions(sqlite).run("balance", {}, UNKNOWN, interaction="call-1")
    assert not result.ok and "not identified" in result.data["error"]


async def test_a_crm_that_is_down_fails_the_action_softly() -> None:
    directory = FakeDirectory()
    directory.fail = CrmUnavailable("connection refused")
    result = await CrmActions(directory).run("balance", {}, DEBTOR, interaction="call-1")
    assert not result.ok and "connection refused" in result.data["error"]


async def test_a_slow_crm_fails_the_action_within_the_budget() -> None:
    directory = FakeDirectory()
    directory.delay_s = 5
    result = await CrmActions(directory, budget_s=0.05).run("balance", {}, DEBTOR, interaction="call-1")
    assert result == ActionResult("balance", False, {"error": "CRM did not answer within 50 ms"})


async def test_an_open_breaker_fails_actions_without_asking_the_crm() -> None:
    directory = FakeDirectory()
    breaker = CircuitBreaker(failure_threshold=1)
    breaker.record_failure()
    result = await CrmActions(directory, breaker=breaker).run("balance", {}, DEBTOR, interaction="call-1")
    assert not result.ok and "circuit open" in result.data["error"]
    assert directory.actions == []


async def test_a_refusal_from_the_crm_is_a_failed_result_not_a_breaker_failure() -> None:
    directory = FakeDirectory()
    directory.outcome = ActionOutcome("service_on", False, {"error": "not available"})
    breaker = CircuitBreaker(failure_threshold=1)
    result = await CrmActions(directory, breaker=breaker).run("service_on", {"service": "x"}, DEBTOR,
                                                              interaction="call-1")
    assert result == ActionResult("service_on", False, {"error": "not available"})
    assert breaker.consecutive_failures == 0


async def test_a_write_tells_on_change_the_customers_number_so_the_cache_can_drop_it() -> None:
    changed: list[str] = []
    actions = CrmActions(FakeDirectory({"+79992088812": anna()}), on_change=changed.append)
    await actions.run("balance", {}, DEBTOR, interaction="call-1")
    await actions.run("service_on", {"service": "roaming"}, DEBTOR, interaction="call-1")
    assert changed == ["+79992088812"]


async def test_a_write_comes_back_with_the_customer_as_the_crm_holds_them_now(sqlite: SqliteDirectory) -> None:
    result = await CrmActions(sqlite).run("service_on", {"service": "roaming"}, DEBTOR, interaction="call-1")
    assert result.customer is not None and result.customer["id"] == "C-208812"
    assert "roaming" in result.customer["services"]


async def test_a_read_brings_no_customer_back(sqlite: SqliteDirectory) -> None:
    assert (await CrmActions(sqlite).run("balance", {}, DEBTOR, interaction="call-1")).customer is None


async def test_a_write_never_hands_back_another_customer_under_the_same_number() -> None:
    """The number now belongs to somebody else (or the record was rewritten): keep the caller as they were."""
    actions = CrmActions(FakeDirectory({"+79992088812": anna()}))
    result = await actions.run("service_on", {"service": "roaming"}, DEBTOR, interaction="call-1")
    assert result.ok and result.customer is None


async def test_a_crm_that_cannot_be_reread_keeps_the_write_and_brings_no_customer() -> None:
    directory = FakeDirectory({"+79992088812": anna(id="C-208812", number="+79992088812")})

    async def down(e164: str) -> None:
        raise CrmUnavailable("connection refused", operation="by_number")

    directory.by_number = down  # type: ignore[method-assign]
    result = await CrmActions(directory).run("service_on", {"service": "roaming"}, DEBTOR, interaction="call-1")
    assert result.ok and result.customer is None
