"""The simulator walks the demo tree like a caller, on every channel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.flow import Tree, load_tree
from ivr.tools.simulate import simulate

ROOT = Path(__file__).resolve().parents[3]
KNOWN = {"customer": {"id": "C1", "name": "Anna", "balance": "1250.5", "currency": "RUB", "services": []}}


@pytest.fixture(scope="module")
def demo() -> Tree:
    return load_tree(ROOT / "config/menus", numbers=ROOT / "config/numbers.yaml")


def test_balance_then_operator_on_voice(demo: Tree) -> None:
    result = simulate(demo, KNOWN, ["1", "0"], "voice", "100")
    said = [line.text for line in result.transcript if line.kind == "say"]
    assert said[0] == "Hello, Anna! Welcome to Nova Telecom."
    assert "Your balance is 1,250.50 RUB." in said
    assert result.finished and result.outcome is not None
    assert (result.outcome.kind, result.outcome.queue) == ("routed", "support")


def test_unknown_caller_gets_the_anonymous_greeting(demo: Tree) -> None:
    result = simulate(demo, {}, [], "voice", "8800")
    assert result.transcript[0].text == "Welcome to Nova Telecom."
    assert not result.finished


def test_0611_says_the_balance_and_hangs_up(demo: Tree) -> None:
    result = simulate(demo, KNOWN, [], "voice", "0611")
    assert [line.text for line in result.transcript if line.kind == "say"] == [
        "Your balance is 1,250.50 RUB.",
        "Thank you for calling Nova Telecom. Goodbye!",
    ]
    assert result.outcome is not None and result.outcome.kind == "hung_up"


def test_ussd_shows_screens_in_russian(demo: Tree) -> None:
    result = simulate(demo, KNOWN, ["3"], "ussd", "100", language="ru")
    screens = [line.text for line in result.transcript if line.kind == "screen"]
    assert screens[1] == "Услуги\n1. Включить АОН\n2. Включить голосовую почту\n9. Назад\n0. Оператор"


def test_timeouts_escalate_then_route_to_the_fallback(demo: Tree) -> None:
    result = simulate(demo, {}, ["T", "", "T"], "voice", "100")
    said = [line.text for line in result.transcript if line.kind == "say"]
    assert "Sorry, I did not hear anything." in said
    assert said[-1] == "Let me put you through to an operator."
    assert result.outcome is not None and result.outcome.reason == "caller could not complete the menu"


def test_words_are_speech(demo: Tree) -> None:
    result = simulate(demo, KNOWN, ["roaming please"], "voice", "100")
    assert any(e.type == "speech_matched" for e in result.journey)


def test_h_is_the_caller_hanging_up(demo: Tree) -> None:
    result = simulate(demo, {}, ["H"], "voice", "100")
    assert result.outcome is not None and result.outcome.kind == "caller_hung_up"


def test_json_and_text_reports(demo: Tree) -> None:
    result = simulate(demo, KNOWN, ["1", "0"], "sms", "100")
    data = json.loads(result.to_json())
    assert data["outcome"]["queue"] == "support"
    assert data["journey"][0] == {"type": "node_entered", "node": "greeting", "kind": "say"}
    assert "[end] routed to queue support" in result.to_text()


KEYS = st.sampled_from(["0", "1", "2", "3", "4", "5", "9", "7", "*", "#", "T", "H", "balance", "agent", "yes"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.lists(KEYS, max_size=25),
    channel=st.sampled_from(["voice", "ussd", "sms"]),
    dnis=st.sampled_from(["100", "8800", "0611"]),
    debt=st.sampled_from([0, 300]),
)
def test_any_caller_behaviour_walks_the_demo_without_errors(
    demo: Tree, keys: list[str], channel: str, dnis: str, debt: int
) -> None:
    context = {"customer": {**KNOWN["customer"], "debt": debt, "segment": "vip"}}
    result = simulate(demo, context, keys, channel, dnis)
    assert result.finished or not result.unused_keys
