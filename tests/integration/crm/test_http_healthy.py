"""The HTTP CRM adapter against a healthy local CRM server: lookups, PIN checks and actions."""

from __future__ import annotations

from decimal import Decimal

from ivr.crm.actions import CrmActions
from ivr.crm.http_directory import HttpDirectory
from ivr.crm.lookup import CrmLookup
from ivr.flow.context import CallerContext
from tests.integration.crm.conftest import TOKEN, FakeCrm

ANNA_CONTEXT = CallerContext(customer={"id": "C-100231", "number": "+79991234567"})


async def test_a_known_caller_is_found_and_mapped(directory: HttpDirectory) -> None:
    result = await CrmLookup(directory).lookup("8 999 123-45-67")
    assert result.status == "found" and result.customer is not None
    c = result.customer
    assert (c.id, c.name, c.segment, c.balance, c.manager) == ("C-100231", "Anna", "vip", Decimal("15420.75"),
                                                               "agent2")
    assert result.customer_fields()["services"] == ["roaming"]


async def test_a_404_means_an_unknown_caller(directory: HttpDirectory) -> None:
    result = await CrmLookup(directory).lookup("+79990001122")
    assert (result.status, result.error) == ("unknown", None)


async def test_the_bearer_token_and_the_digits_of_the_number_are_sent(directory: HttpDirectory,
                                                                       fake_crm: FakeCrm) -> None:
    await directory.by_number("+79991234567")
    request = fake_crm.requests[-1]
    assert request.path == "/api/v2/contacts/by-phone/79991234567"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_the_right_pin_identifies_the_account_holder(directory: HttpDirectory) -> None:
    customer = await directory.by_account("100231", "1234")
    assert customer is not None and customer.id == "C-100231"


async def test_a_wrong_pin_identifies_nobody(directory: HttpDirectory, fake_crm: FakeCrm) -> None:
    assert await directory.by_account("100231", "0000") is None
    assert "0000" not in str(fake_crm.requests[-1].url)


async def test_an_action_carries_its_idempotency_key_and_a_repeat_is_replayed(directory: HttpDirectory,
                                                                              fake_crm: FakeCrm) -> None:
    first = await directory.run_action("service_on", {"service": "roaming"}, "C-100231", "call-1:service_on:ab")
    again = await directory.run_action("service_on", {"service": "roaming"}, "C-100231", "call-1:service_on:ab")
    assert fake_crm.requests[0].headers["Idempotency-Key"] == "call-1:service_on:ab"
    assert first.ok and first.data == {"service": "roaming", "enabled": True} and not first.replayed
    assert again.replayed and again.data == first.data
    assert len(fake_crm.applied) == 1


async def test_a_refused_action_carries_the_crms_reason(directory: HttpDirectory) -> None:
    outcome = await directory.run_action("service_on", {"service": "satellite"}, "C-100231", "k")
    assert not outcome.ok and outcome.data == {"error": "satellite is not sold here"}


async def test_crm_actions_run_through_the_http_adapter(directory: HttpDirectory) -> None:
    result = await CrmActions(directory).run("service_on", {"service": "roaming"}, ANNA_CONTEXT,
                                             interaction="call-9")
    assert result.ok and result.data["enabled"] is True
