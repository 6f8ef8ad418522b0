"""The demo menu tree on real calls: SIPp over PJSIP with RFC 2833 DTMF into the controller.

Every main path of config/menus is walked by a real call; the path the engine recorded
comes back from Asterisk as IVR_PATH, next to the route the dialplan acted on.
Keys are pressed while prompts play (barge-in), as impatient callers do.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asterisk


def nodes(record) -> list[str]:
    return record.variables.get("IVR_PATH", "").split(">")


def test_zero_in_the_main_menu_reaches_an_operator(controller, place_call):
    record = place_call(dnis="100", keys="0", delay_s=3, hold_s=6)

    assert record.errors == []
    assert record.digits == "0"
    assert record.queue is not None and record.queue.name == "support"
    assert record.variables["IVR_ROUTE_REASON"] == "caller asked for an operator"
    assert nodes(record) == ["greeting_anonymous", "main", "operator_standard"]


def test_balance_is_read_out_then_the_caller_asks_for_an_operator(controller, place_call):
    record = place_call(dnis="100", keys="1WWW0", delay_s=3, hold_s=8)

    assert record.errors == []
    assert record.digits == "10"
    assert nodes(record)[:3] == ["greeting_anonymous", "main", "balance_check"]
    assert nodes(record)[-1] == "operator_standard"


def test_tariffs_submenu_has_its_own_operator_key(controller, place_call):
    record = place_call(dnis="100", keys="2WW0", delay_s=3, hold_s=8)

    assert record.errors == []
    assert "tariffs" in nodes(record)
    assert record.queue is not None and record.queue.name == "support"


def test_service_switched_on_after_confirmation(controller, place_call):
    record = place_call(dnis="100", keys="3WW1WW1WWWW0", delay_s=3, hold_s=10)

    assert record.errors == []
    path = nodes(record)
    assert "services" in path
    assert any(n.startswith("service") and n != "services" for n in path)
    assert path[-1].startswith("operator")


def test_roaming_submenu_is_reached(controller, place_call):
    record = place_call(dnis="100", keys="4WW0", delay_s=3, hold_s=8)

    assert record.errors == []
    assert "roaming" in nodes(record)
    assert record.queue is not None


def test_invalid_keys_escalate_then_send_the_caller_to_an_operator(controller, place_call):
    record = place_call(dnis="100", keys="7WWW7WWW7", delay_s=3, hold_s=12)

    assert record.errors == []
    assert record.queue is not None and record.queue.name == "support"
    assert record.variables["IVR_ROUTE_REASON"] == "caller could not complete the menu"


def test_silence_escalates_then_sends_the_caller_to_an_operator(controller, place_call):
    # The orders menu (104): four short prompts, where the main menu's 20 s made this the
    # slowest call of the suite; the escalation is the same engine rule on every menu.
    record = place_call(dnis="104", keys="", delay_s=1, hold_s=52)

    assert record.errors == []
    assert record.queue is not None and record.queue.name == "support"
    assert record.variables["IVR_ROUTE_REASON"] == "caller could not complete the menu"


def test_balance_number_says_the_balance_and_hangs_up(controller, place_call):
    record = place_call(dnis="0611", keys="", delay_s=1, hold_s=20)

    assert record.errors == []
    assert record.variables["IVR_RESULT"] == "hangup"
    assert record.hangup_cause == 16
    assert record.queue is None
