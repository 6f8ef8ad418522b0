"""The engine's behaviour: the data cases in engine_cases.yaml, then what data cannot show."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.flow import (
    ActionResult,
    CallerContext,
    Collect,
    Digits,
    Event,
    Hangup,
    LoopDetected,
    MenuChoice,
    NoEntryPoint,
    Play,
    RunAction,
    Session,
    SessionFinished,
    SetVariable,
    Speech,
    Started,
    TemplateFailed,
    Text,
    Timeout,
    Tree,
    Typed,
    UnexpectedEvent,
    UnknownChannel,
    load_tree,
)
from tests.unit.flow.casefmt import format_action, format_journey, parse_event

HERE = Path(__file__).parent
CASES = yaml.safe_load((HERE / "engine_cases.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tree() -> Tree:
    return load_tree(HERE / "data/engine_tree.yaml")


def start(tree: Tree, context: Mapping[str, Any] | None = None, **kwargs: Any) -> Session:
    session = Session(tree, context or {}, **kwargs)
    session.handle(Started("100"))
    return session


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_engine_case(tree: Tree, case: dict[str, Any]) -> None:
    session = Session(tree, case.get("context", {}), channel=case.get("channel", "voice"))
    for step in case["steps"]:
        actions = session.handle(parse_event(step["send"]))
        assert [format_action(a) for a in actions] == step["expect"], step["send"]
        journey = [format_journey(e) for e in session.drain_journey()]
        if "journey" in step:
            assert journey == step["journey"], step["send"]
    if "outcome" in case:
        outcome = session.outcome
        assert outcome is not None and session.finished
        assert {k: getattr(outcome, k) for k in case["outcome"]} == case["outcome"]


def test_typed_values_stay_typed_in_play(tree: Tree) -> None:
    session = start(tree)
    session.handle(Digits("1"))
    actions = session.handle(ActionResult("balance", True, {"balance": Decimal("1250.5"), "currency": "RUB"}))
    play = actions[0]
    assert isinstance(play, Play)
    assert play.parts == (Text("Balance"), Typed("currency", Decimal("1250.5"), "RUB"), Text("."))


def test_text_channel_collect_lists_visible_options_with_labels(tree: Tree) -> None:
    session = Session(tree, {"customer": {"language": "ru"}}, channel="sms")
    collect = session.handle(Started())[-1]
    assert isinstance(collect, Collect)
    assert collect.options == (
        MenuChoice("1", "Баланс"),
        MenuChoice("2", "ПИН"),
        MenuChoice("4", "Услуги"),
        MenuChoice("0", "Оператор"),
    )


def test_voice_collect_carries_the_spoken_grammar(tree: Tree) -> None:
    collect = Session(tree, {}).handle(Started())[-1]
    assert isinstance(collect, Collect)
    assert collect.grammar == ("balance", "money", "services", "service options", "agent", "operator")


def test_explicit_language_wins_over_the_customer_language(tree: Tree) -> None:
    session = Session(tree, {"customer": {"language": "ru"}}, language="en")
    play = session.handle(Started())[0]
    assert isinstance(play, Play) and play.language == "en"


def test_unknown_customer_language_falls_back_to_the_first_tree_language(tree: Tree) -> None:
    assert Session(tree, {"customer": {"language": "de"}}).language == "en"


def test_masked_pin_never_appears_in_journey_or_reprs(tree: Tree) -> None:
    session = start(tree, {"customer": {"id": "C1"}})
    session.handle(Digits("2"))
    session.handle(Digits("9"))  # wrong length: a nomatch carrying the input
    actions = session.handle(Digits("4321#"))
    journey = session.drain_journey()
    assert session.variables["pin"] == "4321"  # the host still gets the value
    assert any(isinstance(a, RunAction) and a.args["pin"] == "4321" for a in actions)
    for text in [repr(e) for e in journey] + [repr(a) for a in actions] + [repr(Digits("4321#"))]:
        assert "4321" not in text
    assert "9" not in str([e.data for e in journey if e.type == "input_invalid"])


def test_set_variable_repr_hides_masked_value() -> None:
    assert "4321" not in repr(SetVariable("pin", "4321", masked=True))
    assert "4321" in repr(SetVariable("account", "4321"))


def test_finished_session_refuses_input(tree: Tree) -> None:
    session = start(tree)
    session.handle(Digits("0"))
    assert session.finished
    with pytest.raises(SessionFinished):
        session.handle(Digits("1"))


def test_finished_session_ignores_a_late_hangup(tree: Tree) -> None:
    session = start(tree)
    session.handle(Digits("0"))
    assert session.handle(Hangup()) == []


def test_input_before_start_is_an_unexpected_event(tree: Tree) -> None:
    with pytest.raises(UnexpectedEvent):
        Session(tree, {}).handle(Digits("1"))


def test_started_twice_is_an_unexpected_event(tree: Tree) -> None:
    session = start(tree)
    with pytest.raises(UnexpectedEvent):
        session.handle(Started())


def test_action_result_for_another_action_is_an_unexpected_event(tree: Tree) -> None:
    session = start(tree)
    session.handle(Digits("1"))
    with pytest.raises(UnexpectedEvent) as info:
        session.handle(ActionResult("service_on", True, {}))
    assert info.value.node == "balance"


def test_action_result_while_waiting_for_input_is_an_unexpected_event(tree: Tree) -> None:
    with pytest.raises(UnexpectedEvent):
        start(tree).handle(ActionResult("balance", True, {}))


def test_unknown_channel_is_refused(tree: Tree) -> None:
    with pytest.raises(UnknownChannel):
        Session(tree, {}, channel="fax")


def test_unmapped_number_without_tree_entry_has_no_entry_point(tmp_path: Path) -> None:
    menu = tmp_path / "t.yaml"
    menu.write_text("version: 1\nlanguages: [en]\nnodes:\n  bye: {type: hangup}\n")
    numbers = tmp_path / "numbers.yaml"
    numbers.write_text('numbers:\n  "100": bye\n')
    tree = load_tree(menu, numbers=numbers)
    assert Session(tree, {}).handle(Started("100"))[-1].reason == "completed"  # type: ignore[union-attr]
    with pytest.raises(NoEntryPoint):
        Session(tree, {}).handle(Started("999"))


def test_explicit_entry_overrides_the_dialled_number(tree: Tree) -> None:
    actions = Session(tree, {}, entry="services").handle(Started("100"))
    assert isinstance(actions[0], Play) and actions[0].prompt_id == "services.prompt"


def test_template_failure_is_a_typed_error_naming_the_node(tree: Tree) -> None:
    session = start(tree)
    session.handle(Digits("1"))
    with pytest.raises(TemplateFailed) as info:
        session.handle(ActionResult("balance", True, {}))  # no result.balance
    assert info.value.node == "balance_say"


def test_sessions_share_the_tree_without_interfering(tree: Tree) -> None:
    first = start(tree, {"customer": {"segment": "vip"}})
    second = start(tree, {"customer": {"segment": "mass"}})
    assert [format_action(a) for a in first.handle(Timeout())][-1] == "collect main keys=12340 digits=1..1"
    assert [format_action(a) for a in second.handle(Timeout())][-1] == "collect main keys=1240 digits=1..1"


def test_same_events_give_same_actions_and_journey(tree: Tree) -> None:
    events: list[Event] = [
        Started("100"),
        Digits("1"),
        ActionResult("balance", True, {"balance": 5, "currency": "RUB"}),
        Speech("services"),
        Digits("1"),
        Digits("2"),
        Timeout(),
        Digits("9"),
        Digits("0"),
    ]

    def run() -> list[str]:
        session = Session(tree, CallerContext(customer={"id": "C1"}))
        out = [format_action(a) for e in events for a in session.handle(e)]
        return out + [format_journey(j) for j in session.drain_journey()]

    assert run() == run()


def test_conditions_are_read_once_per_call_when_they_only_use_the_context(tree: Tree) -> None:
    class CountingCustomer(dict[str, Any]):
        reads = 0

        def __getitem__(self, key: str) -> Any:
            CountingCustomer.reads += 1
            return super().__getitem__(key)

    session = start(tree, {"customer": CountingCustomer(segment="vip")})
    before = CountingCustomer.reads
    assert before > 0
    session.handle(Timeout())
    session.handle(Digits("7"))
    assert CountingCustomer.reads == before


def test_loop_guard_stops_a_runaway_walk() -> None:
    from ivr.flow.model import GotoNode

    nodes = {"a": GotoNode(id="a", target="b"), "b": GotoNode(id="b", target="a")}
    tree = Tree(version="x", languages=("en",), nodes=nodes, entry="a")  # bypasses the validator on purpose
    with pytest.raises(LoopDetected):
        Session(tree, {}).handle(Started())


def test_drain_journey_empties_it(tree: Tree) -> None:
    session = start(tree)
    assert session.drain_journey()
    assert session.drain_journey() == []


def inline_tree(tmp_path: Path, nodes: str, *, head: str = "") -> Tree:
    path = tmp_path / "tree.yaml"
    path.write_text(
        "version: 1\nlanguages: [en]\nentry: main\nfallback: agent\n"
        + head
        + "nodes:\n"
        + nodes
        + "  agent: {type: route, queue: support}\n",
        encoding="utf-8",
    )
    return load_tree(path)


def test_a_long_menu_is_one_list_on_every_channel_the_channel_pages_it(tmp_path: Path) -> None:
    """Screen size is the channel's business (ivr/ussd/screens.py); the engine knows none."""
    options = "".join(
        f"      - {{key: {k}, label: '{'Option ' + str(k) + ' ' + 'x' * 40}', goto: agent}}\n" for k in range(1, 8)
    )
    tree = inline_tree(
        tmp_path, "  main:\n    type: menu\n    paginate: true\n    prompt: Menu\n    options:\n" + options
    )
    for channel in ("voice", "ussd"):
        session = Session(tree, {}, channel=channel)
        collect = session.handle(Started())[-1]
        assert isinstance(collect, Collect) and [o.key for o in collect.options] == list("1234567")
        assert [format_action(a) for a in session.handle(Digits("7"))][-1] == "route support priority=0: "


def test_collect_pattern_must_match_the_whole_input(tmp_path: Path) -> None:
    tree = inline_tree(
        tmp_path,
        "  main: {type: collect, prompt: Account, max_digits: 8, pattern: '7[0-9]{5}', store_as: acct, next: agent}\n",
    )
    session = Session(tree, {})
    session.handle(Started())
    assert format_action(session.handle(Digits("812345"))[0]) == "play main.prompt: Account"  # nomatch, reprompt
    assert [format_action(a) for a in session.handle(Digits("712345#"))][0] == "set acct=712345"


def test_spoken_digits_fill_a_collect(tmp_path: Path) -> None:
    tree = inline_tree(tmp_path, "  main: {type: collect, prompt: Code, max_digits: 4, store_as: code, next: agent}\n")
    session = Session(tree, {})
    session.handle(Started())
    assert format_action(session.handle(Speech("1 2 3 4"))[0]) == "set code=1234"


def test_reprompt_false_plays_only_the_escalation_prompt(tmp_path: Path) -> None:
    tree = inline_tree(
        tmp_path,
        "  main:\n    type: menu\n    prompt: Menu\n    reprompt: false\n    noinput: ['Press 1 for the agent.']\n"
        "    options: [{key: 1, label: Agent, goto: agent}]\n",
    )
    session = Session(tree, {})
    session.handle(Started())
    assert [format_action(a) for a in session.handle(Timeout())] == [
        "play main.noinput.1: Press 1 for the agent.",
        "collect main keys=1 digits=1..1",
    ]


def test_false_condition_on_a_node_follows_else(tmp_path: Path) -> None:
    tree = inline_tree(
        tmp_path,
        "  main: {type: say, when: 'customer.vip is defined', else: other, prompt: VIP, next: agent}\n"
        "  other: {type: say, prompt: Hello, next: agent}\n",
    )
    actions = Session(tree, {}).handle(Started())
    assert [format_action(a) for a in actions] == ["play other.prompt: Hello", "route support priority=0: "]


def test_back_from_the_first_menu_replays_it(tmp_path: Path) -> None:
    tree = inline_tree(
        tmp_path,
        "  main: {type: menu, prompt: Menu, options: [{key: 9, label: Back, goto: back}]}\n  back: {type: back}\n",
    )
    session = Session(tree, {})
    session.handle(Started())
    assert [format_action(a) for a in session.handle(Digits("9"))] == [
        "play main.prompt: Menu",
        "collect main keys=9 digits=1..1",
    ]
