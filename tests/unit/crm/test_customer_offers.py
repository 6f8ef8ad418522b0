"""The CRM's offer and interest scores for a customer: read, stored, and shown to templates."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from ivr.crm.fields import FieldError, customer_from_fields
from ivr.crm.seed import seed_demo
from ivr.crm.sqlite_directory import SqliteDirectory

ROOT = Path(__file__).resolve().parents[3]
BASE = {"id": "C-1", "number": "+79995550011", "name": "Elena"}


def test_offer_and_scores_reach_the_templates() -> None:
    customer = customer_from_fields({**BASE, "offer": "roaming-7d", "offer_text": "Seven days for 990.",
                                     "scores": {"roaming": "0.92", "tariffs": 0.4}})

    fields = customer.template_fields()
    assert fields["offer"] == {"code": "roaming-7d", "text": "Seven days for 990."}
    assert fields["scores"] == {"roaming": Decimal("0.92"), "tariffs": Decimal("0.4")}


def test_a_customer_without_an_offer_has_none_and_empty_scores() -> None:
    fields = customer_from_fields(BASE).template_fields()

    assert "offer" not in fields and fields["scores"] == {}


@pytest.mark.parametrize("scores", [{"roaming": "high"}, ["roaming"], {"roaming": "NaN"}])
def test_scores_that_are_not_numbers_are_refused_with_the_field(scores: object) -> None:
    with pytest.raises(FieldError, match="scores"):
        customer_from_fields({**BASE, "scores": scores})


async def test_the_demo_traveller_has_an_offer_in_sqlite(tmp_path: Path) -> None:
    seed_demo(tmp_path / "crm.sqlite")
    directory = SqliteDirectory(tmp_path / "crm.sqlite")
    try:
        elena = await directory.by_number("+79995550011")
    finally:
        directory.close()

    assert elena is not None and (elena.offer, elena.scores["roaming"]) == ("roaming-7d", Decimal("0.92"))


async def test_a_directory_file_of_the_previous_version_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id TEXT PRIMARY KEY, number TEXT NOT NULL UNIQUE, name TEXT NOT NULL, "
                     "language TEXT NOT NULL, segment TEXT NOT NULL, balance TEXT NOT NULL, currency TEXT NOT NULL, "
                     "debt TEXT NOT NULL, overdue_days INTEGER NOT NULL, tariff TEXT, manager TEXT, region TEXT, "
                     "account TEXT UNIQUE, pin_hash TEXT, blacklisted INTEGER NOT NULL DEFAULT 0, last_agent TEXT, "
                     "last_contact TEXT)")
        conn.execute("INSERT INTO customers (id, number, name, language, segment, balance, currency, debt, "
                     "overdue_days) VALUES ('C-9', '+79990009999', 'Old', 'en', 'regular', '1', 'RUB', '0', 0)")
    directory = SqliteDirectory(path)
    try:
        old = await directory.by_number("+79990009999")
    finally:
        directory.close()

    assert old is not None and (old.name, old.offer, dict(old.scores)) == ("Old", None, {})
