"""The demo data set: one record per kind of caller the menus and routing rules treat differently."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ivr.crm.customer import Customer
from ivr.crm.errors import CrmConfigError
from ivr.crm.seed import DemoData, load_demo_data


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return load_demo_data()


def by_number(demo: DemoData, number: str) -> Customer:
    return next(r.customer for r in demo.records if r.customer.number == number)


def test_the_vip_is_found_by_the_number_written_any_way(demo: DemoData) -> None:
    assert by_number(demo, "+79991234567").segment == "vip"


def test_the_debtor_owes_1250_for_45_days(demo: DemoData) -> None:
    debtor = by_number(demo, "+79992088812")
    assert (debtor.debt, debtor.overdue_days) == (Decimal("1250.00"), 45)


def test_one_number_is_blacklisted(demo: DemoData) -> None:
    assert [r.customer.number for r in demo.records if r.customer.blacklisted] == ["+79996660013"]


def test_the_personal_manager_customer_is_in_st_petersburg_with_agent2(demo: DemoData) -> None:
    customer = by_number(demo, "+78124000518")
    assert (customer.manager, customer.region) == ("agent2", "St Petersburg")


def test_the_returning_caller_knows_their_last_agent(demo: DemoData) -> None:
    assert by_number(demo, "+79991255700").last_agent == "agent1"


def test_one_customer_speaks_russian(demo: DemoData) -> None:
    assert [r.customer.name for r in demo.records if r.customer.language == "ru"] == ["Ольга"]


def test_the_documented_unknown_number_is_not_a_customer(demo: DemoData) -> None:
    assert "+79990001122" in demo.not_in_data
    assert all(r.customer.number != "+79990001122" for r in demo.records)


def test_every_tariff_a_customer_has_can_be_switched_to(demo: DemoData) -> None:
    assert {r.customer.tariff for r in demo.records} <= set(demo.tariffs)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_bad_field_is_reported_with_the_record(tmp_path: Path) -> None:
    path = write(tmp_path, "customers:\n  - {id: C-1, number: '+79991234567', name: A, balance: lots}\n")
    with pytest.raises(CrmConfigError, match=r"customers\[0\] \(C-1\): balance"):
        load_demo_data(path)


def test_an_unquoted_pin_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "customers:\n  - {id: C-1, number: '+79991234567', name: A, pin: 0123}\n")
    with pytest.raises(CrmConfigError, match="pin must be quoted"):
        load_demo_data(path)


def test_a_number_used_twice_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "customers:\n"
                           "  - {id: C-1, number: '+79991234567', name: A}\n"
                           "  - {id: C-2, number: '8 999 123 45 67', name: B}\n")
    with pytest.raises(CrmConfigError, match=r"number \+79991234567 is used twice \(C-1, C-2\)"):
        load_demo_data(path)


def test_an_unknown_number_that_is_a_customer_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "customers:\n  - {id: C-1, number: '+79991234567', name: A}\n"
                           "not_in_data: {'+79991234567': oops}\n")
    with pytest.raises(CrmConfigError, match="not_in_data"):
        load_demo_data(path)
