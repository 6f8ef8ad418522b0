"""The demo tree in config/ is valid and keeps the promises the docs make about it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow import Tree, load_tree, validate
from ivr.flow.model import MenuNode, RouteNode
from tests.demo_actions import DEMO_ACTIONS

ROOT = Path(__file__).resolve().parents[3]
MENUS = ROOT / "config/menus"
NUMBERS = ROOT / "config/numbers.yaml"


@pytest.fixture(scope="module")
def demo() -> Tree:
    return load_tree(MENUS, numbers=NUMBERS, known_actions=DEMO_ACTIONS)


def test_demo_tree_validates_cleanly() -> None:
    assert validate(MENUS, numbers=NUMBERS, known_actions=DEMO_ACTIONS) == []


def test_demo_tree_speaks_english_and_russian(demo: Tree) -> None:
    assert demo.languages == ("en", "ru")


def test_numbers_map_to_entries(demo: Tree) -> None:
    assert demo.numbers["100"] == demo.numbers["8800"] == "greeting"
    assert demo.numbers["0611"] == "number:0611"


def test_every_menu_offers_an_operator_on_0(demo: Tree) -> None:
    for node in demo.nodes.values():
        if isinstance(node, MenuNode):
            zero = [o for o in node.options if o.key == "0"]
            # the callback offer's 0 ("keep waiting") goes straight to the queue: its wait was already said
            assert zero and zero[0].goto in ("operator", "operator_standard"), node.id


def test_operator_and_fallback_route_to_support(demo: Tree) -> None:
    for node_id in ("operator", "operator_standard", demo.fallback):
        node = demo.nodes[node_id or ""]
        assert isinstance(node, RouteNode) and node.queue == "support"
