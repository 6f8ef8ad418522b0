"""The tree drawn for review: every node and option is there, and no menu text can break the drawing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.flow import Tree, load_tree
from ivr.tools.graph import shorten, to_dot, to_mermaid

ROOT = Path(__file__).resolve().parents[3]

# A DOT double-quoted string: anything but a quote, backslash or line break, or an escape pair.
DOT_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
# A Mermaid box: a plain id, an opening bracket, a quoted label free of quotes, the closing bracket.
MERMAID_BOX = re.compile(r'^    (?P<id>\w+)(?:\(\(|\(\[|\{\{|\[/|\[)"(?P<label>[^"]*)"(?:\)\)|\]\)|\}\}|/\]|\])$')
MERMAID_ARROW = re.compile(r'^    (?P<src>\w+) -->(?:\|"(?P<label>[^"|]*)"\|)? (?P<dst>\w+)$')

TRICKY = """\
version: "t-1"
languages: [en]
entry: intro
fallback: agent
nodes:
  intro:
    type: say
    prompt: |
      One "two"
      [three] | four
    next: main
  main:
    type: menu
    title: 'Say "hi" [now] | {x} #1 <b> & `code`; done'
    prompt: Main.
    options:
      - key: 1
        label: Agent
        when: "customer.name != '\\"]|'"
        goto: agent
      - key: "#"
        label: Hash
        goto: agent
  agent:
    type: route
    queue: 'q"1\\x'
    reason: "caller asked"
"""


@pytest.fixture(scope="module")
def demo() -> Tree:
    return load_tree(ROOT / "config/menus", numbers=ROOT / "config/numbers.yaml")


@pytest.fixture
def tricky(tmp_path: Path) -> Tree:
    (tmp_path / "tree.yaml").write_text(TRICKY, encoding="utf-8")
    return load_tree(tmp_path / "tree.yaml")


def mermaid_boxes(text: str) -> dict[str, str]:
    """Mermaid id -> label of every box; fails on a line that is neither a box, an arrow nor styling."""
    boxes: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        box = MERMAID_BOX.match(line)
        if box:
            boxes[box["id"]] = box["label"]
            continue
        assert MERMAID_ARROW.match(line) or line.startswith(("    class ", "    classDef ")), line
    return boxes


def mermaid_id(boxes: dict[str, str], node_id: str) -> str:
    return next(key for key, label in boxes.items() if label.split("<br/>")[0] == node_id)


def test_demo_tree_renders_as_a_mermaid_flowchart(demo: Tree) -> None:
    text = to_mermaid(demo)
    assert text.startswith("flowchart TD\n")
    assert len(mermaid_boxes(text)) == len(demo.nodes) + len(demo.numbers) + 1  # + "any other number"


def test_every_node_id_appears_in_both_formats(demo: Tree) -> None:
    mermaid = to_mermaid(demo)
    dot = to_dot(demo)
    for node_id in demo.nodes:
        assert f'"{node_id}<br/>' in mermaid
        assert f'"{node_id}" [label="{node_id}\\n' in dot


def test_numbers_are_start_nodes_pointing_at_their_entry(demo: Tree) -> None:
    dot = to_dot(demo)
    assert '"☎ 100" -> "greeting";' in dot
    assert '"☎ 0611" -> "number:0611";' in dot
    assert '"☎ any other number" -> "greeting";' in dot


def test_an_option_key_is_an_edge_label(demo: Tree) -> None:
    text = to_mermaid(demo)
    boxes = mermaid_boxes(text)
    main, balance = mermaid_id(boxes, "main"), mermaid_id(boxes, "balance_check")
    assert f'    {main} -->|"1"| {balance}' in text.splitlines()
    assert '"main" -> "balance_check" [label="1"];' in to_dot(demo)


def test_an_option_condition_is_shortened_into_its_edge_label(demo: Tree) -> None:
    dot = to_dot(demo)
    edge = next(line for line in dot.splitlines() if line.startswith('    "main" -> "debt_payment"'))
    assert 'label="5 when: customer.debt is defined and…"' in edge


def test_field_edges_are_labelled_by_field_name(demo: Tree) -> None:
    dot = to_dot(demo)
    assert '"balance_check" -> "balance_unavailable" [label="on_failure"];' in dot
    assert '"operator" -> "operator_wait" [label="else"];' in dot
    assert '"roaming_on" -> "roaming" [label="on_cancel"];' in dot


def test_parallel_edges_are_merged_into_one_arrow(demo: Tree) -> None:
    assert '"main" -> "operator_fallback" [label="on_noinput_exhausted, on_nomatch_exhausted"];' in to_dot(demo)


def test_labels_are_in_the_requested_language(demo: Tree) -> None:
    assert "menu: Нова Телеком" in to_mermaid(demo, "ru")
    assert "menu: Nova Telecom" in to_mermaid(demo, "fr")  # unknown: the fallback language


def test_mermaid_escapes_quotes_brackets_pipes_and_newlines(tricky: Tree) -> None:
    text = to_mermaid(tricky)
    boxes = mermaid_boxes(text)  # every line still parses: nothing leaked out of a label
    main = boxes[mermaid_id(boxes, "main")]
    assert main == "main<br/>menu: Say #34;hi#34; #91;now#93; #124; #123;x#125; #35;1 #60;b#62; #38; #96;code#96;#59;…"
    agent = boxes[mermaid_id(boxes, "agent")]
    assert "queue q#34;1#92;x" in agent
    assert "#34;#93;#124;" in text  # the condition on the option edge


def test_dot_quotes_every_string_so_nothing_escapes_it(tricky: Tree) -> None:
    dot = to_dot(tricky)
    for line in dot.splitlines():
        assert '"' not in DOT_STRING.sub("", line), line
    assert 'queue q\\"1\\\\x' in dot
    assert "\\\"]|'" in dot  # the option condition, quote escaped


def test_a_multiline_prompt_becomes_one_line(tricky: Tree) -> None:
    assert '"intro" [label="intro\\nsay: One \\"two\\" [three] | four"' in to_dot(tricky)
    boxes = mermaid_boxes(to_mermaid(tricky))
    assert boxes[mermaid_id(boxes, "intro")] == "intro<br/>say: One #34;two#34; #91;three#93; #124; four"


def test_shorten_cuts_at_a_word_and_marks_the_cut() -> None:
    assert shorten("one two three four", 12) == "one two…"
    assert shorten("a\nb", 10) == "a b"
