"""The embedded SQLite directory: lookups, PIN checks and idempotent named actions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from ivr.crm.customer import Customer
from ivr.crm.directory_ports import BALANCE, SERVICE_OFF, SERVICE_ON, TARIFF_CHANGE
from ivr.crm.seed import seed_demo
from ivr.crm.sqlite_directory import SqliteDirectory
from tests.unit.crm.fakes import anna

VIP, DEBTOR, RUSSIAN = "C-100231", "C-208812", "C-311907"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "crm.db"
    seed_demo(path, pin_iterations=1000)
    return path


@pytest.fixture
def directory(db: Path) -> Iterator[SqliteDirectory]:
    directory = SqliteDirectory(db)
    yield directory
    directory.close()


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


async def test_a_fresh_file_gets_the_schema_and_knows_nobody(tmp_path: Path) -> None:
    directory = SqliteDirectory(tmp_path / "new.db")
    assert await directory.by_number("+79991234567") is None
    directory.close()
    assert ("applied_actions",) in rows(tmp_path / "new.db", "SELECT name FROM sqlite_master WHERE type='table'")


async def test_a_customer_is_found_by_their_e164_number(directory: SqliteDirectory) -> None:
    customer = await directory.by_number("+79991234567")
    assert customer is not None
    assert (customer.id, customer.name, customer.segment, customer.balance) == (VIP, "Anna", "vip",
                                                                                 Decimal("15420.75"))


async def test_the_documented_unknown_number_is_not_found(directory: SqliteDirectory) -> None:
    assert await directory.by_number("+79990001122") is None


async def test_what_is_stored_is_what_comes_back(tmp_path: Path) -> None:
    directory = SqliteDirectory(tmp_path / "x.db")
    original = anna(services={"roaming": True, "voicemail": False}, manager="agent2", debt=Decimal("0.10"))
    directory.put_customer(original)
    assert await directory.by_number(original.number) == original
    directory.close()


async def test_queries_run_off_the_event_loop_thread(directory: SqliteDirectory,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = directory._by_number

    def spy(conn: sqlite3.Connection, e164: str) -> Customer | None:
        seen.append(threading.get_ident())
        return real(conn, e164)

    monkeypatch.setattr(directory, "_by_number", spy)
    await directory.by_number("+79991234567")
    assert seen and seen[0] != threading.get_ident()


# -- identification by account and PIN ---------------------------------------------------------


async def test_the_right_pin_identifies_the_account_holder(directory: SqliteDirectory) -> None:
    customer = await directory.by_account("100231", "1234")
    assert customer is not None and customer.id == VIP


async def test_a_wrong_pin_identifies_nobody(directory: SqliteDirectory) -> None:
    assert await directory.by_account("100231", "1235") is None


async def test_an_unknown_account_identifies_nobody(directory: SqliteDirectory) -> None:
    assert await directory.by_account("999999", "1234") is None


async def test_an_account_without_a_pin_cannot_be_entered_with_an_empty_pin(directory: SqliteDirectory) -> None:
    # The blacklisted demo customer has no account and no PIN.
    assert await directory.by_account("", "") is None


def test_pins_are_stored_hashed(db: Path) -> None:
    stored = [str(row[0]) for row in rows(db, "SELECT pin_hash FROM customers WHERE pin_hash IS NOT NULL")]
    assert stored and all(h.startswith("pbkdf2_sha256$") for h in stored)
    assert b"1234" not in b"".join(h.encode() for h in stored)


# -- named actions ---------------------------------------------------------------------------


async def test_service_off_writes_back(directory: SqliteDirectory) -> None:
    outcome = await directory.run_action(SERVICE_OFF, {"service": "roaming"}, VIP, "call-1:service_off:x")
    assert outcome.ok and outcome.data == {"service": "roaming", "enabled": False, "changed": True}
    customer = await directory.by_number("+79991234567")
    assert customer is not None and customer.services["roaming"] is False


async def test_service_on_for_a_service_already_on_succeeds_without_a_change(directory: SqliteDirectory) -> None:
    outcome = await directory.run_action(SERVICE_ON, {"service": "voicemail"}, RUSSIAN, "call-1:on:v")
    assert outcome.ok and outcome.data["changed"] is False


async def test_a_repeated_key_returns_the_first_outcome_and_writes_once(directory: SqliteDirectory,
                                                                        db: Path) -> None:
    first = await directory.run_action(SERVICE_ON, {"service": "roaming"}, DEBTOR, "call-7:service_on:r")
    # Someone turns roaming off in between; the replay must not turn it on again.
    await directory.run_action(SERVICE_OFF, {"service": "roaming"}, DEBTOR, "call-8:service_off:r")
    again = await directory.run_action(SERVICE_ON, {"service": "roaming"}, DEBTOR, "call-7:service_on:r")
    assert (again.ok, again.data, again.replayed) == (first.ok, first.data, True)
    assert not first.replayed
    customer = await directory.by_number("+79992088812")
    assert customer is not None and customer.services["roaming"] is False
    assert rows(db, "SELECT count(*) FROM applied_actions WHERE key = 'call-7:service_on:r'") == [(1,)]


async def test_a_key_reused_for_another_customer_is_refused(directory: SqliteDirectory) -> None:
    await directory.run_action(SERVICE_ON, {"service": "roaming"}, DEBTOR, "k")
    outcome = await directory.run_action(SERVICE_ON, {"service": "roaming"}, RUSSIAN, "k")
    assert not outcome.ok and "already used" in outcome.data["error"]


async def test_a_service_the_customer_cannot_have_is_refused(directory: SqliteDirectory) -> None:
    outcome = await directory.run_action(SERVICE_ON, {"service": "satellite"}, VIP, "k1")
    assert not outcome.ok and "not available" in outcome.data["error"]


async def test_a_service_action_without_a_service_is_refused(directory: SqliteDirectory) -> None:
    outcome = await directory.run_action(SERVICE_ON, {}, VIP, "k1")
    assert not outcome.ok and outcome.data["error"] == "no service given"


async def test_tariff_change_writes_back_and_reports_the_previous_tariff(directory: SqliteDirectory) -> None:
    outcome = await directory.run_action(TARIFF_CHANGE, {"tariff": "Smart"}, VIP, "call-2:tariff_change:s")
    assert outcome.ok and outcome.data == {"tariff": "Smart", "previous": "Max", "changed": True}
    customer = await directory.by_number("+79991234567")
    assert customer is not None and customer.tariff == "Smart"


async def test_an_unknown_tariff_is_refused(directory: SqliteDirectory) -> None:
    outcome = await directory.run_action(TARIFF_CHANGE, {"tariff": "Free Forever"}, VIP, "k2")
    assert not outcome.ok and "unknown tariff" in outcome.data["error"]


async def test_balance_reads_the_current_balance_every_time(directory: SqliteDirectory) -> None:
    first = await directory.run_action(BALANCE, {}, DEBTOR, "call-3:balance:-")
    again = await directory.run_action(BALANCE, {}, DEBTOR, "call-3:balance:-")
    assert first.data == {"balance": Decimal("-1250.00"), "currency": "RUB"}
    assert not again.replayed


async def test_an_unknown_action_is_refused_with_its_name(directory: SqliteDirectory) -> None:
    outcome = await directory.run_action("block_card", {}, VIP, "k3")
    assert not outcome.ok and outcome.data["error"] == "unknown action 'block_card'"


async def test_an_action_for_an_unknown_customer_is_refused(directory: SqliteDirectory) -> None:
    outcome = await directory.run_action(SERVICE_ON, {"service": "roaming"}, "C-nobody", "k4")
    assert not outcome.ok and "no customer" in outcome.data["error"]


async def test_seeding_again_resets_the_demo_records(db: Path, directory: SqliteDirectory) -> None:
    await directory.run_action(TARIFF_CHANGE, {"tariff": "Smart"}, VIP, "k5")
    seed_demo(db, pin_iterations=1000)
    customer = await directory.by_number("+79991234567")
    assert customer is not None and customer.tariff == "Max"
