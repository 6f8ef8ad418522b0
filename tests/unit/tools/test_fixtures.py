"""`ivr simulate` answers declared actions from recorded fixtures: both branches without the back end."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow.context import CallerContext
from ivr.tools.fixtures import FixturesInvalid, load_fixtures

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_fixtures_answer_by_argument_and_fall_back_to_the_catch_all() -> None:
    runner = load_fixtures(ROOT / "config/actions.fixtures.yaml", {"order_status", "book_visit", "balance"})

    found = runner.run("order_status", {"order": "12345"}, CallerContext())
    missing = runner.run("order_status", {"order": "1"}, CallerContext())

    assert (found.ok, found.data["status"]) == (True, "shipped")
    assert (missing.ok, missing.data["reason"]) == (False, "refused")


def test_actions_without_fixtures_go_to_the_demo_runner() -> None:
    runner = load_fixtures(ROOT / "config/actions.fixtures.yaml", {"order_status", "book_visit", "balance"})

    assert runner.run("balance", {}, CallerContext(customer={"balance": 5})).data["balance"] == 5


def test_a_fixture_for_an_action_nobody_declared_is_named_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "fixtures.yaml"
    path.write_text("order_staus:\n  - ok: true\n")

    with pytest.raises(FixturesInvalid) as refused:
        load_fixtures(path, {"order_status"})

    assert str(refused.value.problems[0]) == f"{path}:1:1: unknown action 'order_staus'; did you mean 'order_status'?"


def test_simulate_walks_the_order_menu_with_the_recorded_answer(monkeypatch, capsys) -> None:
    from ivr.cli import main

    monkeypatch.setenv("IVR_HOME", str(ROOT))
    assert main(["simulate", "--profile", "vip", "--to", "104", "--keys", "1,12345#"]) == 0

    assert "Order 12345 is shipped, expected on 2026-12-08. Goodbye." in capsys.readouterr().out


def test_validate_names_a_fixture_for_an_action_nobody_declared(tmp_path: Path, monkeypatch, capsys) -> None:
    import shutil

    from ivr.cli import main

    shutil.copytree(ROOT / "config", tmp_path / "config")
    (tmp_path / "sounds").mkdir()
    fixtures = tmp_path / "config" / "actions.fixtures.yaml"
    fixtures.write_text(fixtures.read_text().replace("book_visit:", "book_vist:"))
    monkeypatch.setenv("IVR_HOME", str(tmp_path))

    assert main(["validate"]) == 1
    assert f"{fixtures}:9:1: unknown action 'book_vist'; did you mean 'book_visit'?" in capsys.readouterr().out
