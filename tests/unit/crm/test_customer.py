"""The Customer value and the fields the menu templates see as ``customer.*``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from ivr.crm.customer import Customer
from ivr.crm.errors import CustomerInvalid
from tests.unit.crm.fakes import anna


def test_template_fields_carry_what_the_demo_menus_read() -> None:
    fields = anna(balance=Decimal("15420.75"), debt=Decimal("0"), tariff="Max").template_fields()
    for name in ("id", "name", "segment", "debt", "currency", "language", "balance", "services", "tariff"):
        assert name in fields, name


def test_template_services_list_only_the_codes_that_are_on() -> None:
    customer = anna(services={"roaming": False, "voicemail": True, "caller_id": True})
    # Templates test membership: 'roaming' in customer.services must be false when roaming is off.
    assert customer.template_fields()["services"] == ["caller_id", "voicemail"]


def test_fields_without_a_value_are_left_out_so_templates_can_test_is_defined() -> None:
    fields = anna(tariff=None, manager=None).template_fields()
    assert "tariff" not in fields and "manager" not in fields


def test_template_fields_never_mention_a_pin() -> None:
    customer = anna(account="100231", manager="agent2", last_agent="agent5", last_contact=dt.date(2024, 11, 18))
    assert not any("pin" in key.lower() for key in customer.template_fields())
    assert not any("pin" in f.name for f in dataclasses.fields(Customer))


def test_money_stays_decimal_for_the_currency_prompts() -> None:
    fields = anna(balance=Decimal("-1250.00"), debt=Decimal("1250.00")).template_fields()
    assert fields["balance"] == Decimal("-1250.00") and isinstance(fields["debt"], Decimal)


def test_services_cannot_be_changed_through_the_dict_passed_in() -> None:
    services = {"roaming": True}
    customer = anna(services=services)
    services["roaming"] = False
    assert customer.services["roaming"] is True
    with pytest.raises(TypeError):
        customer.services["roaming"] = False  # type: ignore[index]


@pytest.mark.parametrize("changes", [
    {"number": "89991234567"},
    {"language": "de"},
    {"balance": 10.5},
    {"debt": Decimal("-1")},
    {"overdue_days": -3},
    {"overdue_days": True},
    {"services": {"roaming": "yes"}},
])
def test_a_record_that_breaks_the_rules_is_refused_with_the_customer_named(changes: dict[str, object]) -> None:
    with pytest.raises(CustomerInvalid, match="C-100231"):
        anna(**changes)


def test_a_record_without_an_id_is_refused() -> None:
    with pytest.raises(CustomerInvalid, match="empty id"):
        anna(id="")
