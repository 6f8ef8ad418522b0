"""config/ussd.yaml: the shipped file loads, mistakes are reported at their line and column."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ivr.errors import ConfigError
from ivr.journey.memory import MemoryJourney
from ivr.live.trees import TreeStore
from ivr.ussd import UssdConfig, UssdGateway, load_ussd_config
from ivr.ussd.config import ServiceCode, check_entries
from ivr.ussd.errors import UssdConfigInvalid
from tests.unit.ussd.conftest import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ussd.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(UssdConfigInvalid) as caught:
        load_ussd_config(write(tmp_path, text), env=env or {})
    return [str(p) for p in caught.value.problems]


def test_the_shipped_file_configures_balance_menu_and_deep_link() -> None:
    config = load_ussd_config(ROOT / "config/ussd.yaml", env={})
    assert (config.codes["*100#"].service, config.codes["*100#"].entry) == ("balance", None)  # numbers.yaml maps it
    assert config.codes["*111#"].mode == "tree"
    assert config.codes["*111*2#"].inputs == ("2",)
    assert (config.keys.more, config.keys.back) == ("#", "00")
    assert config.session.timeout_s == 180


def test_a_minimal_file_takes_the_defaults(tmp_path: Path) -> None:
    config = load_ussd_config(write(tmp_path, 'codes: {"*100#": {mode: tree}}\n'), env={})
    assert config.path == "/ussd" and config.limits.screen_chars == 182 and config.auth.secret is None


def test_an_unknown_mode_is_reported_at_its_place(tmp_path: Path) -> None:
    found = problems(tmp_path, 'codes:\n  "*100#":\n    mode: balanse\n')
    assert found == [f"{tmp_path / 'ussd.yaml'}:3:11: service code *100#: 'mode' must be one of tree, "
                     "not 'balanse'"]


def test_the_old_balance_mode_says_where_the_balance_went(tmp_path: Path) -> None:
    found = problems(tmp_path, 'codes:\n  "*100#":\n    mode: balance\n')
    assert found == [f"{tmp_path / 'ussd.yaml'}:3:11: service code *100#: mode 'balance' is now a node of the menu "
                     "tree: use mode tree and map the code to 'balance_only' in config/numbers.yaml"]


def test_an_unknown_field_suggests_the_right_one(tmp_path: Path) -> None:
    found = problems(tmp_path, 'codes: {"*100#": {mode: tree}}\nsesion: {timeout_s: 60}\n')
    assert found == [f"{tmp_path / 'ussd.yaml'}:2:1: unknown field 'sesion' in the USSD settings; "
                     "did you mean 'session'?"]


def test_a_malformed_service_code_is_reported(tmp_path: Path) -> None:
    assert "must look like" in problems(tmp_path, 'codes: {"100": {mode: tree}}\n')[0]


def test_a_star_cannot_be_a_page_key(tmp_path: Path) -> None:
    found = problems(tmp_path, 'codes: {"*100#": {mode: tree}}\nkeys: {back: "*"}\n')
    assert "keys.back" in found[0] and ":2:14:" in found[0]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = ('codes: {"*100#": {mode: tree}}\nsession: {timeout_s: -1}\nlimits: {deadline_s: 30}\n'
            'rate_limit: {burst: "ten"}\n')
    assert len(problems(tmp_path, text)) == 3


def test_a_yaml_syntax_error_has_a_location(tmp_path: Path) -> None:
    assert problems(tmp_path, "codes: [\n")[0].startswith(f"{tmp_path / 'ussd.yaml'}:2:1: YAML syntax error")


def test_the_hmac_secret_comes_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, 'codes: {"*100#": {mode: tree}}\nauth: {secret_env: USSD_SECRET}\n')
    config = load_ussd_config(path, env={"USSD_SECRET": "s" * 32})
    assert config.auth.secret == b"s" * 32
    assert "s" * 32 not in repr(config)


def test_a_named_secret_that_is_not_set_is_a_problem(tmp_path: Path) -> None:
    found = problems(tmp_path, 'codes: {"*100#": {mode: tree}}\nauth: {secret_env: USSD_SECRET}\n')
    assert "USSD_SECRET, which is not set" in found[0]


def test_the_allow_list_takes_addresses_and_networks(tmp_path: Path) -> None:
    path = write(tmp_path, 'codes: {"*100#": {mode: tree}}\nauth: {allow_from: ["10.0.0.0/8", "::1"]}\n')
    assert load_ussd_config(path, env={}).auth.allow_from == (ipaddress.ip_network("10.0.0.0/8"),
                                                              ipaddress.ip_network("::1"))


def test_a_text_with_an_unknown_placeholder_is_a_problem(tmp_path: Path) -> None:
    found = problems(tmp_path, 'codes: {"*100#": {mode: tree}}\ntexts: {expired: {en: "Dial {money} again"}}\n')
    assert "unknown placeholder {money}" in found[0]


def test_texts_can_be_overridden_per_language(tmp_path: Path) -> None:
    path = write(tmp_path, 'codes: {"*100#": {mode: tree}}\ntexts: {route: {en: "Call 0611."}}\n')
    texts = load_ussd_config(path, env={}).texts
    assert texts.get("route", "en") == "Call 0611."
    assert texts.get("route", "ru").startswith("Чтобы поговорить")


def test_an_entry_node_missing_from_the_tree_stops_the_gateway(trees: TreeStore, config: UssdConfig) -> None:
    broken = UssdConfig(codes={"*111#": ServiceCode("*111#", "tree", "menu", entry="nowhere", where="u.yaml:3:5")})
    assert check_entries(broken, trees.current().nodes) == [
        "u.yaml:3:5: service code *111#: entry node 'nowhere' is not in the menu tree"]
    with pytest.raises(ConfigError):
        UssdGateway(broken, trees, None, None, MemoryJourney())  # type: ignore[arg-type]


def test_the_notifications_path_follows_the_request_path_by_default(tmp_path: Path) -> None:
    config = load_ussd_config(write(tmp_path, 'path: /aggregator/ussd\ncodes: {"*100#": {mode: tree}}\n'), env={})
    assert config.events_path == "/aggregator/ussd/events"


def test_a_notifications_path_equal_to_the_request_path_is_reported(tmp_path: Path) -> None:
    found = problems(tmp_path, 'path: /ussd\nevents_path: /ussd\ncodes: {"*100#": {mode: tree}}\n')
    assert any(":2:" in p and "events_path" in p for p in found)
