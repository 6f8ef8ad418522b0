"""Customers from the demo directory drive the demo menus as the templates expect."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.crm.lookup import CrmLookup
from ivr.crm.sqlite_directory import SqliteDirectory
from ivr.flow import Tree, load_tree
from ivr.flow.context import CallerContext
from ivr.tools.simulate import simulate

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def demo() -> Tree:
    return load_tree(ROOT / "config/menus", numbers=ROOT / "config/numbers.yaml")


@pytest.fixture
def lookup(demo_directory: SqliteDirectory) -> CrmLookup:
    return CrmLookup(demo_directory)


async def context_for(lookup: CrmLookup, number: str) -> CallerContext:
    result = await lookup.lookup(number)
    return CallerContext(customer=result.customer_fields(), caller={"number": result.number or ""}, dnis="100")


def said(tree: Tree, context: CallerContext, keys: list[str]) -> list[str]:
    return [line.text for line in simulate(tree, context, keys, "voice", "100").transcript if line.kind == "say"]


async def test_the_vip_is_greeted_by_name_and_reaches_the_operator_with_priority(demo: Tree,
                                                                                 lookup: CrmLookup) -> None:
    context = await context_for(lookup, "8 999 123-45-67")
    result = simulate(demo, context, ["0"], "voice", "100")
    assert result.transcript[0].text == "Hello, Anna! Welcome to Nova Telecom."
    assert result.outcome is not None and result.outcome.priority == 10


async def test_the_debtor_hears_the_debt_notice(demo: Tree, lookup: CrmLookup) -> None:
    lines = said(demo, await context_for(lookup, "+79992088812"), [])
    assert "Your account has an outstanding balance of 1,250.00 RUB." in lines


async def test_roaming_that_is_on_is_offered_off_and_vice_versa(demo: Tree, lookup: CrmLookup) -> None:
    vip = said(demo, await context_for(lookup, "+79991234567"), ["4"])
    debtor = said(demo, await context_for(lookup, "+79992088812"), ["4"])
    assert any("turn off international roaming" in line for line in vip)
    assert any("turn on international roaming" in line for line in debtor)


async def test_the_russian_speaker_hears_russian(demo: Tree, lookup: CrmLookup) -> None:
    lines = said(demo, await context_for(lookup, "+79993119007"), [])
    assert lines[0] == "Здравствуйте, Ольга! Вас приветствует Нова Телеком."


async def test_the_unknown_caller_gets_the_anonymous_greeting(demo: Tree, lookup: CrmLookup) -> None:
    assert said(demo, await context_for(lookup, "+79990001122"), [])[0] == "Welcome to Nova Telecom."
