"""Load-time validation: one broken file per problem, with the exact message a person sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.config.source import parse_yaml
from ivr.flow import Problem, TreeInvalid, load_tree, validate

BROKEN = Path(__file__).resolve().parents[2] / "data" / "menus_broken"

# file (or directory) -> every problem it must produce, exactly, as "path:line:col: message".
TABLE = [
    (
        "yaml_syntax.yaml",
        "yaml_syntax.yaml:9:1: YAML syntax error: found unexpected end of stream "
        "(while scanning a quoted scalar at line 7, column 13)",
    ),
    ("tab_indent.yaml", "tab_indent.yaml:5:1: YAML syntax error: found character '\\t' that cannot start any token"),
    ("unknown_field.yaml", "unknown_field.yaml:9:5: unknown field 'timeuot' in node 'main'; did you mean 'timeout'?"),
    ("unknown_type.yaml", "unknown_type.yaml:6:11: unknown node type 'hangpu' in node 'main'; did you mean 'hangup'?"),
    ("missing_field.yaml", "missing_field.yaml:6:5: missing required field 'queue' in node 'main'"),
    ("missing_version.yaml", "missing_version.yaml:1:1: missing required field 'version' in the tree settings"),
    ("wrong_type.yaml", "wrong_type.yaml:9:14: 'timeout' in node 'main' must be a number, not string"),
    (
        "unknown_target.yaml",
        "unknown_target.yaml:10:40: 'goto' in option 1 of node 'main' refers to unknown node 'tarifs'",
    ),
    ("duplicate_key.yaml", "duplicate_key.yaml:7:3: duplicate key 'main' (first at line 5)"),
    (
        "duplicate_node_id",
        "duplicate_node_id/b.yaml:4:3: duplicate node id 'main' (first defined at duplicate_node_id/a.yaml:5:3)",
    ),
    ("unreachable.yaml", "unreachable.yaml:7:3: node 'orphan' is unreachable from every entry point"),
    (
        "no_entry_point.yaml",
        "no_entry_point.yaml:1:1: the tree has no entry point; set 'entry' or map a number in numbers.yaml",
    ),
    ("loop_without_input.yaml", "loop_without_input.yaml:5:3: loop without input: hello -> again -> hello"),
    ("bad_key.yaml", "bad_key.yaml:10:15: key '10' in option 1 of node 'main' must be one of 0-9, *, #"),
    (
        "unquoted_hash_key.yaml",
        "unquoted_hash_key.yaml:10:13: 'key' in option 1 of node 'main' must be one of 0-9, *, #, not null "
        "(write '#' and '*' in quotes)",
    ),
    (
        "duplicate_menu_key.yaml",
        "duplicate_menu_key.yaml:11:15: duplicate key '1' in node 'main' (first used by option 1)",
    ),
    ("template_syntax.yaml", "template_syntax.yaml:7:13: template does not compile: unexpected '}'"),
    (
        "template_undefined_name.yaml",
        "template_undefined_name.yaml:7:13: template uses undefined name 'custmer'; did you mean 'customer'?",
    ),
    (
        "template_private_attribute.yaml",
        "template_private_attribute.yaml:7:13: template uses private attribute '__class__'; "
        "the sandbox refuses names starting with '_'",
    ),
    (
        "vars_not_stored.yaml",
        "vars_not_stored.yaml:7:13: template uses vars.account but no collect node stores 'account'",
    ),
    ("masked_in_prompt.yaml", "masked_in_prompt.yaml:15:13: masked variable 'pin' may only be used in action args"),
    ("missing_sound.yaml", "missing_sound.yaml:7:21: sound 'no-such-recording' not found for language 'en'"),
    ("missing_language.yaml", "missing_language.yaml:8:7: 'prompt' in node 'main' has no text for language 'ru'"),
    (
        "unknown_language.yaml",
        "unknown_language.yaml:9:7: unknown language 'de' in 'prompt' in node 'main'; the tree's languages are en",
    ),
    ("when_without_else.yaml", "when_without_else.yaml:7:11: 'when' in node 'main' needs an 'else' target"),
    (
        "no_fallback.yaml",
        "no_fallback.yaml:6:5: 'on_noinput_exhausted' is not set in node 'main' and the tree has no 'fallback'",
    ),
    (
        "bad_pattern.yaml",
        "bad_pattern.yaml:10:14: 'pattern' in node 'account' is not a valid regular expression: "
        "unterminated character set at position 0",
    ),
    ("min_over_max.yaml", "min_over_max.yaml:9:17: 'min_digits' (6) is greater than 'max_digits' (4) in node 'pin'"),
]


@pytest.mark.parametrize(("name", "expected"), TABLE, ids=[name for name, _ in TABLE])
def test_broken_file_reports_exact_problem(name: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BROKEN)
    assert [str(p) for p in validate(name)] == [expected]


def test_every_broken_example_is_in_the_table() -> None:
    examples = {p.name for p in BROKEN.iterdir() if p.suffix == ".yaml" or p.is_dir()}
    assert examples == {name for name, _ in TABLE}


def test_problem_prints_like_a_compiler_message() -> None:
    assert str(Problem("menus/main.yaml", 3, 7, "boom")) == "menus/main.yaml:3:7: boom"


def test_load_tree_raises_with_every_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BROKEN)
    with pytest.raises(TreeInvalid) as info:
        load_tree(["unknown_field.yaml"])
    assert [str(p) for p in info.value.problems] == [TABLE[2][1]]
    assert TABLE[2][1] in str(info.value)


def test_missing_path_is_a_problem_not_an_exception() -> None:
    assert [p.message for p in validate("/nonexistent/menus")] == ["no such file or directory"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


HEADER = "version: 1\nlanguages: [en]\nentry: main\n"


def test_sound_found_in_language_folder_passes(tmp_path: Path) -> None:
    (tmp_path / "sounds/en").mkdir(parents=True)
    (tmp_path / "sounds/en/welcome.wav").write_bytes(b"RIFF")
    menu = write(tmp_path, "t.yaml", HEADER + "nodes:\n  main: {type: hangup, prompt: {sound: welcome}}\n")
    assert validate(menu, sound_dirs=[tmp_path / "sounds"]) == []


def test_sound_found_in_extra_flat_folder_passes(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core/vm-goodbye.gsm").write_bytes(b"x")
    menu = write(tmp_path, "t.yaml", HEADER + "nodes:\n  main: {type: hangup, prompt: {sound: vm-goodbye}}\n")
    assert validate(menu, extra_sound_dirs=[tmp_path / "core"]) == []


def test_sound_must_exist_for_every_language(tmp_path: Path) -> None:
    (tmp_path / "sounds/en").mkdir(parents=True)
    (tmp_path / "sounds/en/welcome.wav").write_bytes(b"RIFF")
    menu = write(
        tmp_path,
        "t.yaml",
        "version: 1\nlanguages: [en, ru]\nentry: main\nnodes:\n  main: {type: hangup, prompt: {sound: welcome}}\n",
    )
    assert [p.message for p in validate(menu, sound_dirs=[tmp_path / "sounds"])] == [
        "sound 'welcome' not found for language 'ru'"
    ]


def test_references_may_cross_files_of_one_tree(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", HEADER + "nodes:\n  main: {type: goto, target: bye}\n")
    write(tmp_path, "b.yaml", "nodes:\n  bye: {type: hangup}\n")
    assert validate(tmp_path) == []


def test_conflicting_tree_settings_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", HEADER + "nodes:\n  main: {type: hangup}\n")
    write(tmp_path, "b.yaml", "version: 2\n")
    assert [str(p) for p in validate(tmp_path)] == [
        f"{tmp_path}/b.yaml:1:10: 'version' differs from the value set at {tmp_path}/a.yaml:1:10"
    ]


def test_unquoted_number_in_numbers_yaml(tmp_path: Path) -> None:
    menu = write(tmp_path, "t.yaml", HEADER + "nodes:\n  main: {type: hangup}\n")
    numbers = write(tmp_path, "numbers.yaml", "numbers:\n  0611: main\n")
    assert [p.message for p in validate(menu, numbers=numbers)] == [
        'number 0611 must be quoted so it stays a string: "0611"'
    ]


def test_numbers_yaml_unknown_entry(tmp_path: Path) -> None:
    menu = write(tmp_path, "t.yaml", HEADER + "nodes:\n  main: {type: hangup}\n")
    numbers = write(tmp_path, "numbers.yaml", 'numbers:\n  "100": mian\n')
    assert [str(p) for p in validate(menu, numbers=numbers)] == [
        f"{numbers}:2:10: 'entry' in number '100' refers to unknown node 'mian'; did you mean 'main'?"
    ]


def test_a_number_may_name_the_ari_driver_and_the_tree_keeps_it(tmp_path: Path) -> None:
    menu = write(tmp_path, "t.yaml", HEADER + "nodes:\n  main: {type: hangup}\n")
    numbers = write(tmp_path, "numbers.yaml", 'numbers:\n  "100": main\n  "101": {entry: main, driver: ari}\n'
                                              '  "102": {entry: main, driver: agi}\n')
    tree = load_tree(menu, numbers=numbers)
    assert dict(tree.drivers) == {"101": "ari"}
    assert tree.entry_for("101") == "main"


def test_an_unknown_driver_is_reported_where_it_is_written(tmp_path: Path) -> None:
    menu = write(tmp_path, "t.yaml", HEADER + "nodes:\n  main: {type: hangup}\n")
    numbers = write(tmp_path, "numbers.yaml", 'numbers:\n  "101": {entry: main, driver: sip}\n')
    assert [str(p) for p in validate(menu, numbers=numbers)] == [
        f"{numbers}:2:32: 'driver' in number '101' must be one of agi, ari, not 'sip'"
    ]


def test_known_actions_catch_unknown_names_and_missing_args(tmp_path: Path) -> None:
    menu = write(
        tmp_path,
        "t.yaml",
        HEADER + "fallback: bye\nnodes:\n"
        "  main: {type: action, name: servce_on, on_success: bye}\n"
        "  other: {type: action, name: service_on, on_success: bye}\n"
        "  bye: {type: hangup}\n"
        "  x: {type: goto, target: other}\n",
    )
    known = {"service_on": ["service"], "balance": []}
    messages = [p.message for p in validate(menu, known_actions=known)]
    assert "unknown action 'servce_on'; did you mean 'service_on'?" in messages
    assert "action 'service_on' needs arg 'service'" in messages


def test_duplicate_keys_are_allowed_when_every_option_has_a_condition(tmp_path: Path) -> None:
    menu = write(
        tmp_path,
        "t.yaml",
        HEADER + "fallback: bye\nnodes:\n  main:\n    type: menu\n    prompt: Menu\n    options:\n"
        "      - {key: 1, when: 'customer.vip is defined', label: A, goto: bye}\n"
        "      - {key: 1, when: 'customer.vip is not defined', label: B, goto: bye}\n"
        "  bye: {type: hangup}\n",
    )
    assert validate(menu) == []


@pytest.mark.parametrize("paginate", ["", "    paginate: true\n"])
def test_a_menu_longer_than_a_ussd_screen_is_valid_the_channel_pages_it(tmp_path: Path, paginate: str) -> None:
    options = "".join(f"      - {{key: {k}, label: '{'x' * 40}', goto: bye}}\n" for k in range(1, 8))
    body = "nodes:\n  main:\n    type: menu\n    prompt: Menu\n" + paginate + "    options:\n" + options
    menu = write(tmp_path, "t.yaml", HEADER + "fallback: bye\n" + body + "  bye: {type: hangup}\n")
    assert validate(menu) == []


def test_yaml_aliases_and_merge_keys_are_understood(tmp_path: Path) -> None:
    menu = write(
        tmp_path,
        "t.yaml",
        HEADER + "fallback: bye\nbase: &base {type: hangup}\nnodes:\n  main: {<<: *base, reason: x}\n  bye: *base\n",
    )
    assert [p.message for p in validate(menu)] == ["unknown field 'base' in the tree settings"]


TOKENS = [*"ab:-{}[]#&*!|>'\"% \n\t01", "\n  ", "nodes:", "type: ", "menu", "options:", "{{", "}}", "<<: "]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=80).map("".join))
def test_arbitrary_text_never_raises(text: str) -> None:
    problems: list[Problem] = []
    parse_yaml(text, "fuzz.yaml", problems)
    assert all(p.line >= 1 and p.col >= 1 for p in problems)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(TOKENS), max_size=80).map("".join))
def test_arbitrary_files_give_problems_not_tracebacks(tmp_path: Path, text: str) -> None:
    menu = tmp_path / "fuzz.yaml"
    menu.write_text("version: 1\nlanguages: [en]\nentry: a\n" + text, encoding="utf-8")
    problems = validate(menu)
    assert not [p for p in problems if p.message.startswith("internal validator error")]


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
node_bodies = st.fixed_dictionaries(
    {"type": st.sampled_from(["menu", "say", "collect", "action", "route", "goto", "back", "repeat", "hangup", 3])},
    optional={
        k: yaml_values
        for k in ["prompt", "options", "next", "target", "when", "else", "noinput", "max_digits", "args", "confirm"]
    },
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.sampled_from(["main", "a", "b"]), node_bodies, min_size=1))
def test_arbitrary_trees_give_problems_not_tracebacks(tmp_path: Path, nodes: dict[str, object]) -> None:
    import yaml

    menu = tmp_path / "fuzz.yaml"
    menu.write_text(yaml.safe_dump({"version": 1, "languages": ["en"], "entry": "main", "nodes": nodes}))
    problems = validate(menu)
    assert not [p for p in problems if p.message.startswith("internal validator error")]


def test_a_constant_typed_value_of_the_wrong_type_is_a_load_time_problem(tmp_path):
    menu = tmp_path / "m.yaml"
    menu.write_text("version: 1\nlanguages: [en]\nentry: main\nnodes:\n  main:\n    type: say\n"
                    "    prompt: {date: 0}\n    next: h\n  h: {type: hangup}\n")

    assert [str(p) for p in validate(menu)] == [
        f"{menu}:7:13: 'prompt' in node 'main': int value is not a date"]
