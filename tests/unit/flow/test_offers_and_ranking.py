"""Per-caller menus: options offered by the caller's scores (`rank`), an offer from the CRM
answered yes, no or not at all, and the topic of each node in the journey."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ivr.flow import Tree, load_tree
from ivr.tools.simulate import simulate

TREE = """version: "1"
languages: [en]
entry: offer
fallback: main
nodes:
  offer:
    type: offer
    when: customer.offer is defined
    else: main
    offer: "{{ customer.offer.code }}"
    prompt: "{{ customer.offer.text }} Press 1 to accept, 2 to decline."
    on_accept: accepted
    on_decline: main
    on_ignore: main
  accepted:
    type: hangup
    reason: offer accepted
  main:
    type: menu
    prompt: "Main menu."
    options:
      - {key: 1, label: Balance, goto: balance, prompt: "Balance, press 1.",
         rank: "customer.scores.balance | default(0)"}
      - {key: 2, label: Tariffs, goto: balance, prompt: "Tariffs, press 2.",
         rank: "customer.scores.tariffs | default(0)"}
      - {key: 4, label: Roaming, goto: roaming, prompt: "Roaming, press 4.",
         rank: "customer.scores.roaming | default(0)"}
      - {key: 0, label: Operator, goto: balance, prompt: "Operator, press 0."}
  roaming:
    type: hangup
    topic: roaming
    reason: roaming
  balance:
    type: hangup
    topic: balance
    reason: balance
"""
TRAVELLER = {"customer": {"id": "C-1", "scores": {"roaming": 0.9, "tariffs": 0.4},
                          "offer": {"code": "roaming-7d", "text": "Seven days of roaming for 990."}}}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    path: Path = tmp_path_factory.mktemp("tree") / "tree.yaml"
    path.write_text(TREE)
    return load_tree(path)


def said(result: Any) -> list[str]:
    return [line.text for line in result.transcript if line.kind == "say"]


def journey(result: Any, kind: str) -> list[dict[str, Any]]:
    return [dict(e.data) for e in result.journey if e.type == kind]


@pytest.mark.parametrize(("scores", "order"), [
    ({"roaming": 0.9, "tariffs": 0.4}, ["Roaming, press 4.", "Tariffs, press 2.", "Balance, press 1."]),
    ({"balance": "2", "roaming": 1}, ["Balance, press 1.", "Roaming, press 4.", "Tariffs, press 2."]),
    ({}, ["Balance, press 1.", "Tariffs, press 2.", "Roaming, press 4."]),  # no scores: as written
    ({"roaming": "high"}, ["Balance, press 1.", "Tariffs, press 2.", "Roaming, press 4."]),  # unreadable: 0
])
def test_options_are_offered_highest_rank_first(tree: Tree, scores: dict[str, Any], order: list[str]) -> None:
    result = simulate(tree, {"customer": {"id": "C-1", "scores": scores}}, [])

    assert said(result)[1:4] == order and said(result)[4] == "Operator, press 0."


def test_an_unknown_caller_gets_the_options_as_written(tree: Tree) -> None:
    assert said(simulate(tree, {}, []))[1:] == ["Balance, press 1.", "Tariffs, press 2.", "Roaming, press 4.",
                                                "Operator, press 0."]


def test_keys_stay_with_their_option_whatever_the_order(tree: Tree) -> None:
    result = simulate(tree, {"customer": {"id": "C-1", "scores": {"roaming": 0.9}}}, ["1"])

    assert result.outcome is not None and result.outcome.reason == "balance"


@pytest.mark.parametrize(("keys", "answer", "reason"), [
    (["1"], "accepted", "offer accepted"),
    (["2", "4"], "declined", "roaming"),
    (["", "4"], "ignored", "roaming"),  # silence once is an answer: the menu follows
])
def test_an_offer_is_answered_and_journaled(tree: Tree, keys: list[str], answer: str, reason: str) -> None:
    result = simulate(tree, TRAVELLER, keys)

    assert said(result)[0] == "Seven days of roaming for 990. Press 1 to accept, 2 to decline."
    assert journey(result, "offer_presented") == [{"node": "offer", "offer": "roaming-7d"}]
    assert journey(result, "offer_answered") == [{"node": "offer", "offer": "roaming-7d", "answer": answer}]
    assert result.outcome is not None and result.outcome.reason == reason


def test_a_caller_without_an_offer_goes_straight_to_the_menu(tree: Tree) -> None:
    result = simulate(tree, {"customer": {"id": "C-2"}}, [])

    assert said(result)[0] == "Main menu." and journey(result, "offer_presented") == []


def test_a_node_with_a_topic_names_it_in_the_journey(tree: Tree) -> None:
    result = simulate(tree, {}, ["4"])

    assert {"node": "roaming", "kind": "hangup", "topic": "roaming"} in journey(result, "node_entered")


def test_an_offer_without_its_answers_is_named_at_its_line(tmp_path: Path) -> None:
    from ivr.flow import validate

    path = tmp_path / "tree.yaml"
    path.write_text(TREE.replace("    on_decline: main\n", ""))

    assert [(p.line, p.message) for p in validate(path)] == [(7, "missing required field 'on_decline' in node 'offer'")]
