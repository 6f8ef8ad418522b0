"""config/actions.yaml: what an admin declares, and every mistake named with its file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.crm.action_catalog import ACTION_ARGS
from ivr.crm.declared_config import ActionsInvalid, load_declared_actions, missing_secrets

ROOT = Path(__file__).resolve().parents[3]
RESERVED = frozenset(ACTION_ARGS)
GOOD = """version: 1
services:
  orders:
    base_url: http://orders.example
    secrets:
      Authorization: {env: ORDERS_TOKEN, format: "Bearer {}"}
actions:
  order_status:
    service: orders
    path: /orders/{order}
    args:
      order: digits
    result: {state: status}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "actions.yaml"
    path.write_text(text)
    return path


def test_the_shipped_file_declares_order_status_and_book_visit() -> None:
    declared = load_declared_actions(ROOT / "config/actions.yaml", reserved=RESERVED)

    assert set(declared.actions) == {"order_status", "book_visit"}
    order = declared.actions["order_status"]
    assert (order.method, order.path, order.retry_safe, order.failure_statuses) == (
        "GET", "/orders/{order}", True, frozenset({404}))
    assert declared.actions["book_visit"].retry_safe is False


def test_a_missing_file_declares_nothing(tmp_path: Path) -> None:
    assert load_declared_actions(tmp_path / "absent.yaml").actions == {}


def test_a_good_file_gives_typed_signatures(tmp_path: Path) -> None:
    declared = load_declared_actions(write(tmp_path, GOOD), env={"ORDERS_TOKEN": "t"}, check_secrets=True)

    signature = declared.signatures()["order_status"]
    assert [(a.name, a.type, a.required) for a in signature.args] == [("order", "digits", True)]
    assert signature.strict


@pytest.mark.parametrize(("change", "message"), [
    (("service: orders\n    path", "service: ordrs\n    path"), "9:14: action 'order_status': unknown service 'ordrs'"),
    (("order: digits", "order: digit"), "type must be one of text, digits, number, boolean; did you mean 'digits'?"),
    (("/orders/{order}", "/orders/{id}"), "path uses {id}, which is not an argument"),
    (("  order_status:", "  balance:"), "'balance' is a built-in action; choose another name"),
    (("    secrets:", "    headers: {Authorization: abc}\n    secrets:"), "looks like a credential"),
    (("result: {state: status}", "result: {error: status}"), "result field 'error' must be a lower-case name"),
    (("base_url: http://orders.example", "base_url: orders.example"), "must start with http:// or https://"),
])
def test_each_mistake_is_named_at_its_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = write(tmp_path, GOOD.replace(*change))

    with pytest.raises(ActionsInvalid) as refused:
        load_declared_actions(path, reserved=RESERVED)

    assert any(message in str(p) and str(p).startswith(str(path)) for p in refused.value.problems), \
        refused.value.problems


def test_a_required_secret_that_is_not_set_stops_the_controller_but_only_warns_validate(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)

    with pytest.raises(ActionsInvalid, match=r"\$ORDERS_TOKEN is not set"):
        load_declared_actions(path, env={}, check_secrets=True)
    declared = load_declared_actions(path, env={})
    assert missing_secrets(declared, {}) == ["service 'orders' header Authorization: $ORDERS_TOKEN is not set"]


def test_base_url_env_points_a_service_elsewhere(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("base_url: http://orders.example",
                                        "base_url: http://orders.example\n    base_url_env: ORDERS_URL"))

    declared = load_declared_actions(path, env={"ORDERS_URL": "http://127.0.0.1:9/api/"})

    assert declared.actions["order_status"].service.base_url == "http://127.0.0.1:9/api"
