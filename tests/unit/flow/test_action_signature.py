"""An action's declared arguments: what a value must look like, and what `ivr validate` says."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow import validate
from ivr.flow.action_signature import ActionSignature, ArgSpec, check_args, check_value

ORDER = ArgSpec("order", "digits", min_length=5, max_length=10)
SIGNATURE = ActionSignature((ORDER, ArgSpec("note", "text", required=False)), strict=True)


@pytest.mark.parametrize(("spec", "value", "problem"), [
    (ORDER, "12345", None),
    (ORDER, "12a45", "'order' must be digits only, got '12a45'"),
    (ORDER, "123", "'order' must be at least 5 characters"),
    (ORDER, "12345678901", "'order' must be at most 10 characters"),
    (ORDER, "", "'order' is empty"),
    (ArgSpec("amount", "number"), "12.50", None),
    (ArgSpec("amount", "number"), "twelve", "'amount' must be a number, got 'twelve'"),
    (ArgSpec("amount", "number"), True, "'amount' must be a number"),
    (ArgSpec("urgent", "boolean"), True, None),
    (ArgSpec("urgent", "boolean"), "yes", "'urgent' must be true or false"),
    (ArgSpec("note", "text", required=False), "", None),
])
def test_a_value_is_checked_against_its_type(spec: ArgSpec, value: object, problem: str | None) -> None:
    assert check_value(spec, value) == problem


@pytest.mark.parametrize(("args", "problem"), [
    ({"order": "12345"}, None),
    ({}, "'order' is missing"),
    ({"order": "12345", "ordr": "1"}, "'ordr' is not an argument of this action"),
])
def test_arguments_are_checked_as_a_whole(args: dict[str, object], problem: str | None) -> None:
    assert check_args(SIGNATURE, args) == problem


MENU = """version: "1"
languages: [en]
entry: check
nodes:
  check:
    type: action
    name: order_status
    args: {ARGS}
    on_success: done
    on_failure: done
  done:
    type: hangup
"""


@pytest.mark.parametrize(("args", "message"), [
    ('{order: "12a45"}', "8:19: action 'order_status': 'order' must be digits only, got '12a45'"),
    ('{ordr: "12345"}', "5:3: action 'order_status' takes no arg 'ordr'; did you mean 'order'?"),
    ("{}", "5:3: action 'order_status' needs arg 'order'"),
])
def test_validate_names_the_line_of_a_wrong_use_of_a_declared_action(tmp_path: Path, args: str, message: str) -> None:
    menu = tmp_path / "menu.yaml"
    menu.write_text(MENU.replace("{ARGS}", args))

    problems = [str(p) for p in validate(menu, known_actions={"order_status": SIGNATURE})]

    assert any(p.endswith(message) for p in problems), problems


def test_a_templated_argument_is_checked_when_the_call_runs_not_at_load_time(tmp_path: Path) -> None:
    menu = tmp_path / "menu.yaml"
    menu.write_text(MENU.replace("{ARGS}", '{order: "{{ caller.number }}"}'))

    assert validate(menu, known_actions={"order_status": SIGNATURE}) == []
