"""Tree diff per caller profile: what each kind of caller would hear and reach, old tree against new."""

from __future__ import annotations

import json
import shutil
import time
from decimal import Decimal
from pathlib import Path

import pytest

from ivr.flow import Tree, load_tree
from ivr.tools.diff import (
    CallerProfile,
    ProfilesInvalid,
    Step,
    diff_trees,
    explore,
    format_path,
    load_profiles,
)

ROOT = Path(__file__).resolve().parents[3]
MENUS = ROOT / "config/menus"
NUMBERS = ROOT / "config/numbers.yaml"
CALLERS = ROOT / "config/callers.yaml"
ENGINE_TREE = Path(__file__).parents[1] / "flow/data/engine_tree.yaml"
NOT_VIP = ("debtor", "russian", "unknown", "personal_manager", "returning")


@pytest.fixture(scope="module")
def demo() -> Tree:
    return load_tree(MENUS, numbers=NUMBERS)


@pytest.fixture(scope="module")
def profiles() -> list[CallerProfile]:
    return load_profiles(CALLERS)


def edited_demo(tmp_path: Path, file: str, old: str, new: str) -> Tree:
    """The demo tree with one text replacement in one of its files (which must match exactly once)."""
    menus = tmp_path / "menus"
    shutil.copytree(MENUS, menus)
    path = menus / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return load_tree(menus, numbers=NUMBERS)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- profiles -----------------------------------------------------------------------------


def test_the_shipped_profiles_load(profiles: list[CallerProfile]) -> None:
    names = [p.name for p in profiles]
    assert names[:6] == ["vip", "debtor", "russian", "unknown", "personal_manager", "returning"]
    by_name = {p.name: p for p in profiles}
    assert by_name["vip"].context["customer"]["segment"] == "vip"
    assert by_name["debtor"].context["customer"]["debt"] > 0
    assert by_name["russian"].context["customer"]["language"] == "ru"
    assert "customer" not in by_name["unknown"].context
    assert "manager" in by_name["personal_manager"].context["customer"]


def test_yaml_floats_become_decimals_like_crm_money(profiles: list[CallerProfile]) -> None:
    assert profiles[0].context["customer"]["balance"] == Decimal("15420.75")


def test_an_unknown_field_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "profiles:\n  vip:\n    custmer: {segment: vip}\n")
    with pytest.raises(ProfilesInvalid) as caught:
        load_profiles(path)
    assert str(caught.value.problems[0]) == (
        f"{path}:3:5: unknown field 'custmer' in profile 'vip'; did you mean 'customer'?"
    )


def test_an_unquoted_dnis_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "profiles:\n  a:\n    dnis: 0611\n")
    with pytest.raises(ProfilesInvalid, match="'dnis' in profile 'a' must be a quoted string"):
        load_profiles(path)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "profiles:\n  a: {channel: fax}\n  b: {customer: [1]}\n  a: {}\n")
    with pytest.raises(ProfilesInvalid) as caught:
        load_profiles(path)
    messages = [p.message for p in caught.value.problems]
    assert messages == [
        "'channel' in profile 'a' must be one of voice, ussd, sms, not 'fax'",
        "'customer' in profile 'b' must be a mapping, not list",
        "duplicate key 'a' (first at line 2)",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n", "the top level must be a mapping, not list"),
        ("profiles: {}\n", "'profiles' must be a non-empty mapping, not empty"),
        ("profile: {}\n", "unknown top-level key 'profile'; expected 'profiles'"),
        ("profiles: [\n", "YAML syntax error"),
    ],
)
def test_a_malformed_file_is_a_typed_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfilesInvalid, match=str(path)) as caught:
        load_profiles(path)
    assert message in str(caught.value)


def test_a_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ProfilesInvalid, match="cannot read file"):
        load_profiles(tmp_path / "nope.yaml")


# -- exploration --------------------------------------------------------------------------


def test_exploration_hears_every_menu_with_its_shortest_keys(demo: Tree, profiles: list[CallerProfile]) -> None:
    found = explore(demo, profiles[0])
    first = {h.screen: format_path(h.path) for h in reversed(found.screens)}
    assert first["main"] == "no keys"
    assert first["roaming"] == "keys 4"
    assert first["roaming_off"] == "keys 4,1"  # the VIP has roaming, so key 1 turns it off
    assert first["main.noinput.3"] == "keys T,T,T"


def test_exploration_renders_screens_in_the_profiles_language(demo: Tree, profiles: list[CallerProfile]) -> None:
    russian = next(p for p in profiles if p.name == "russian")
    found = explore(demo, russian)
    assert found.language == "ru"
    (main,) = found.screen("main")
    assert main.text.startswith("Главное меню. Чтобы узнать баланс, нажмите 1.")
    assert [(c.key, c.label) for c in main.options][:2] == [("1", "Баланс"), ("2", "Тарифы")]


def test_exploration_finds_every_destination_with_its_keys(demo: Tree, profiles: list[CallerProfile]) -> None:
    debtor = next(p for p in profiles if p.name == "debtor")
    found = {(str(r.destination), format_path(r.path)) for r in explore(demo, debtor).destinations}
    assert found == {
        ("queue support (priority 0): caller asked for an operator", "keys 0"),
        ("queue support (priority 5): caller could not complete the menu", "keys 6,6,6"),
    }


def test_action_failures_are_explored_too(demo: Tree, profiles: list[CallerProfile]) -> None:
    quick = next(p for p in profiles if p.name == "quick_balance")
    ends = {str(r.destination): format_path(r.path) for r in explore(demo, quick).destinations}
    assert ends == {"hang-up (completed)": "no keys", "hang-up (balance unavailable)": "keys [balance fails]"}


def test_a_digits_entry_is_answered_with_digits_it_accepts() -> None:
    found = explore(load_tree(ENGINE_TREE), CallerProfile("anon", {}))
    assert any(r.path[:2] == (Step("key", "2"), Step("digits", "1111")) for r in found.destinations)


def test_a_failing_template_is_a_destination_not_a_crash() -> None:
    # check_pin passes customer.id, which an unknown caller does not have.
    found = explore(load_tree(ENGINE_TREE), CallerProfile("anon", {}))
    (error,) = [r for r in found.destinations if r.destination.kind == "error"]
    assert error.node == "check_pin" and format_path(error.path) == "keys 2,1111"
    assert str(error.destination).startswith("error: template-failed: template check_pin.args.customer failed")


def test_exploration_stays_within_max_states(demo: Tree, profiles: list[CallerProfile]) -> None:
    small = explore(demo, profiles[0], max_states=20)
    assert small.states == 20 and small.truncated
    full = explore(demo, profiles[0])
    assert full.states <= 2000 and not full.truncated


def test_exploring_every_profile_of_the_demo_takes_seconds_not_minutes(
    demo: Tree, profiles: list[CallerProfile]
) -> None:
    started = time.perf_counter()
    for profile in profiles:
        assert not explore(demo, profile).truncated
    assert time.perf_counter() - started < 5.0


def test_a_template_reading_result_keeps_results_apart(tmp_path: Path) -> None:
    # A menu that repeats the last balance must be heard once per action outcome.
    (tmp_path / "t.yaml").write_text(
        """\
version: 1
languages: [en]
entry: ask
fallback: agent
nodes:
  ask:
    type: action
    name: balance
    on_success: menu
    on_failure: menu
  menu:
    type: menu
    prompt: "Balance {{ result.get('balance', 'unknown') }}."
    options:
      - {key: 1, label: Again, goto: ask}
      - {key: 0, label: Agent, goto: agent}
  agent: {type: route, queue: support}
""",
        encoding="utf-8",
    )
    found = explore(load_tree(tmp_path / "t.yaml"), CallerProfile("c", {"customer": {"balance": 7}}))
    assert {h.text for h in found.screen("menu")} == {"Balance 7.", "Balance unknown."}


# -- diff ---------------------------------------------------------------------------------


def test_identical_trees_change_nothing_for_anyone(demo: Tree, profiles: list[CallerProfile]) -> None:
    diff = diff_trees(demo, load_tree(MENUS, numbers=NUMBERS), profiles)
    assert not diff.changed
    assert [p.changed for p in diff.profiles] == [False] * len(profiles)
    assert "no change for vip" in diff.to_text()


def test_a_changed_operator_queue_is_a_destination_change_with_its_keys(
    demo: Tree, profiles: list[CallerProfile], tmp_path: Path
) -> None:
    new = edited_demo(
        tmp_path,
        "main.yaml",
        "  operator_standard:\n    type: route\n    queue: support",
        "  operator_standard:\n    type: route\n    queue: general",
    )
    diff = diff_trees(demo, new, profiles)
    for name in NOT_VIP:
        (change,) = diff.for_profile(name).destinations_changed
        assert (change.old.destination.queue, change.new.destination.queue) == ("support", "general")
        assert format_path(change.new.path) == "keys 0"
    assert not diff.for_profile("vip").changed  # VIPs reach their own route node
    assert not diff.for_profile("quick_balance").changed
    text = diff.to_text()
    assert (
        "  destination changed  [keys 0]\n"
        "    old: queue support (priority 0): caller asked for an operator\n"
        "    new: queue general (priority 0): caller asked for an operator"
    ) in text


def test_an_option_only_vips_see_changes_only_the_vip_profile(
    demo: Tree, profiles: list[CallerProfile], tmp_path: Path
) -> None:
    new = edited_demo(
        tmp_path,
        "main.yaml",
        "      - key: 9\n        label: {en: Repeat, ru: Повторить}",
        "      - key: 7\n"
        "        when: customer.segment is defined and customer.segment == 'vip'\n"
        "        label: {en: Concierge, ru: Консьерж}\n"
        "        goto: operator\n"
        "      - key: 9\n        label: {en: Repeat, ru: Повторить}",
    )
    diff = diff_trees(demo, new, profiles)
    vip = diff.for_profile("vip")
    assert [(o.screen, o.key, o.label, format_path(o.path)) for o in vip.options_added] == [
        ("main", "7", "Concierge", "no keys")
    ]
    assert "menu main gained option 7. Concierge  [no keys]" in diff.to_text()
    assert [p.profile.name for p in diff.profiles if p.changed] == ["vip"]


def test_a_changed_prompt_is_reported_with_old_and_new_text(
    demo: Tree, profiles: list[CallerProfile], tmp_path: Path
) -> None:
    new = edited_demo(tmp_path, "tariffs.yaml", 'prompt: {en: "Tariffs.",', 'prompt: {en: "Our tariffs.",')
    diff = diff_trees(demo, new, profiles)
    unknown = diff.for_profile("unknown")
    (change,) = unknown.texts_changed
    assert change.screen == "tariffs" and format_path(change.path) == "keys 2"
    assert change.old[0].startswith("Tariffs. To hear your current tariff")
    assert change.new[0].startswith("Our tariffs. To hear your current tariff")
    assert not diff.for_profile("russian").changed  # the Russian text is untouched
    text = diff.to_text()
    assert "menu tariffs says something else  [keys 2]" in text
    assert "    new: Our tariffs." in text


def test_a_menu_hidden_from_some_callers_is_no_longer_reachable_for_them(
    demo: Tree, profiles: list[CallerProfile], tmp_path: Path
) -> None:
    new = edited_demo(
        tmp_path,
        "main.yaml",
        "      - key: 4\n",
        "      - key: 4\n        when: customer.segment is defined and customer.segment == 'vip'\n",
    )
    diff = diff_trees(demo, new, profiles)
    unknown = diff.for_profile("unknown")
    assert {s.screen: format_path(s.path) for s in unknown.screens_removed}["roaming"] == "keys 4"
    assert [(o.screen, o.key, o.label) for o in unknown.options_removed] == [("main", "4", "Roaming")]
    assert "no longer reachable: menu roaming  [old tree: keys 4]" in diff.to_text()
    assert not diff.for_profile("vip").changed


def test_json_report_is_stable_and_serialisable(demo: Tree, profiles: list[CallerProfile], tmp_path: Path) -> None:
    new = edited_demo(tmp_path, "main.yaml", "    priority: 10\n", "    priority: 8\n")
    some = profiles[:2]
    first = diff_trees(demo, new, some).to_json()
    assert json.dumps(first, ensure_ascii=False) == json.dumps(
        diff_trees(demo, new, some).to_json(), ensure_ascii=False
    )
    vip = next(p for p in first["profiles"] if p["profile"] == "vip")
    (change,) = vip["destinations"]["changed"]
    assert (change["old"]["priority"], change["new"]["priority"], change["new"]["keys"]) == (10, 8, ["0"])
    assert first["changed"] is True


def test_diff_applies_the_routing_rules_to_each_profiles_route_as_a_call_would() -> None:
    """The debtor's "0 for an operator" goes to collections, as a real call from them does."""
    from ivr.settings import load_settings
    from ivr.tools.as_caller import rules_router
    from ivr.tools.diff import Destination, load_profiles

    settings = load_settings(env={})
    profiles = {p.name: p for p in load_profiles(settings.home / "config" / "callers.yaml")}
    route = rules_router(settings)

    decided = route(profiles["debtor"], Destination("routed", "support", 0, "caller asked for an operator"))

    assert (decided.kind, decided.queue, decided.priority) == ("routed", "collections", 5)
    assert "[rules: collections]" in (decided.reason or "")
