"""config/sms.yaml is checked completely at load time, every problem at its path:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.sms.config import SmsConfig, load_sms_config, parse_sms_config
from ivr.sms.errors import SmsConfigInvalid
from tests.demo_actions import DEMO_ACTIONS

from .conftest import SMS_YAML

MINIMAL = """\
version: 1
languages: [en, ru]
fallback: help
replies:
  not_customer: {en: "Not a customer.", ru: "Не абонент."}
  failed: {en: "Failed.", ru: "Ошибка."}
commands:
  help:
    keywords: {en: [HELP], ru: [ПОМОЩЬ]}
    reply: {en: "Help.", ru: "Помощь."}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SmsConfigInvalid) as info:
        parse_sms_config(text, "sms.yaml")
    return [str(p) for p in info.value.problems]


def test_the_shipped_configuration_loads() -> None:
    config = load_sms_config(SMS_YAML, known_actions=DEMO_ACTIONS)
    assert {"help", "balance", "stop", "roaming_on", "roaming_off", "tariffs", "tariff_change"} <= set(config.commands)
    assert "low_balance" in config.notifications


def test_a_minimal_configuration_loads_with_defaults() -> None:
    config = parse_sms_config(MINIMAL)
    assert isinstance(config, SmsConfig)
    assert (config.max_segments, config.default_language, config.kannel.sendsms_port) == (3, "en", 13013)


def test_yaml_syntax_error_names_line_and_column() -> None:
    assert problems("version: 1\nlanguages: [en\n")[0].startswith("sms.yaml:")


def test_unknown_field_is_reported_where_it_is_written() -> None:
    found = problems(MINIMAL.replace("    reply: {en", "    replly: {x: 1}\n    reply: {en"))
    assert "sms.yaml:10:5: unknown field 'replly' in command 'help'; did you mean 'reply'?" in found


def test_reply_missing_a_language_is_reported() -> None:
    found = problems(MINIMAL.replace('reply: {en: "Help.", ru: "Помощь."}', 'reply: {en: "Help."}'))
    assert any(p.startswith("sms.yaml:10:12:") and "no 'ru' text" in p for p in found)


def test_template_syntax_error_is_reported_at_the_text() -> None:
    found = problems(MINIMAL.replace('reply: {en: "Help."', 'reply: {en: "Help {{ customer.name "'))
    assert any(p.startswith("sms.yaml:10:17: template error") for p in found)


def test_template_with_an_unknown_name_is_refused() -> None:
    found = problems(MINIMAL.replace('reply: {en: "Help."', 'reply: {en: "Hi {{ client.name }}"'))
    assert any("unknown name 'client'" in p for p in found)


def test_unknown_action_is_refused_with_a_suggestion() -> None:
    text = MINIMAL + "  bal:\n    keywords: {en: [BAL]}\n    action: balanse\n    reply: {en: a, ru: b}\n"
    assert "sms.yaml:13:13: unknown action 'balanse'; did you mean 'balance'? (actions: balance, callback, " \
           "service_off, service_on, tariff_change)" in problems(text)


def test_action_missing_its_arg_is_refused() -> None:
    text = MINIMAL + "  roam:\n    keywords: {en: [ROAM ON]}\n    action: service_on\n    reply: {en: a, ru: b}\n"
    assert any("needs arg 'service'" in p for p in problems(text))


def test_keywords_that_fold_to_the_same_skeleton_are_refused() -> None:
    # Cyrillic "НЕLР" reads exactly like Latin HELP once look-alikes are folded.
    text = MINIMAL + "  other:\n    keywords: {ru: [НЕLР]}\n    reply: {en: a, ru: b}\n"
    found = problems(text)
    assert any(p.startswith("sms.yaml:12:21:") and "reads the same as a keyword of 'help'" in p for p in found)


def test_punctuation_only_keyword_is_refused() -> None:
    found = problems(MINIMAL.replace("[HELP]", "[HELP, '?']"))
    assert any("only punctuation" in p for p in found)


def test_fallback_must_be_a_command() -> None:
    assert any("fallback 'hlp' is not a command" in p for p in problems(MINIMAL.replace("fallback: help", "fallback: hlp")))


def test_fallback_must_not_change_anything() -> None:
    text = MINIMAL.replace("fallback: help", "fallback: stop") + \
        "  stop:\n    keywords: {en: [STOP]}\n    effect: opt_out\n    reply: {en: a, ru: b}\n"
    assert any("must be a plain reply" in p for p in problems(text))


def test_max_segments_out_of_range_is_refused() -> None:
    assert any("'max_segments' must be from 1 to 10" in p for p in problems("max_segments: 0\n" + MINIMAL))


def test_ports_must_differ() -> None:
    text = MINIMAL + "kannel: {admin_port: 13013, sendsms_port: 13013}\n"
    assert any("is also admin_port" in p for p in problems(text))


def test_allow_ips_must_be_addresses() -> None:
    assert any("not an IP address" in p for p in problems(MINIMAL + "security: {allow_ips: [localhost]}\n"))


def test_sendsms_listens_and_admits_on_loopback_unless_the_deployment_says_otherwise() -> None:
    local = parse_sms_config(MINIMAL, env={}).kannel
    docker = parse_sms_config(MINIMAL, env={"IVR_SMS_SENDSMS_HOST": "172.28.0.40",
                                            "IVR_SMS_SENDSMS_ALLOW": "127.0.0.1;172.28.0.21"}).kannel

    assert (local.sendsms_host, local.sendsms_allow) == ("127.0.0.1", "127.0.0.1")
    assert (docker.sendsms_host, docker.sendsms_allow) == ("172.28.0.40", "127.0.0.1;172.28.0.21")


@pytest.mark.parametrize(("kannel", "message"), [
    ("{sendsms_host: kannel.local}", "sendsms_host 'kannel.local' must be an IP address"),
    ('{sendsms_allow: "10.0.0.1, 10.0.0.2"}', "must be addresses or * patterns separated by ';'"),
], ids=["host-name", "comma-list"])
def test_a_sendsms_host_or_allow_list_kannel_cannot_read_is_refused_where_it_is_written(kannel, message) -> None:
    found = problems(MINIMAL + f"kannel: {kannel}\n")
    assert any(message in p and p.startswith("sms.yaml:11:") for p in found), found


def test_quoted_sender_is_required_because_yaml_reads_digits_as_a_number() -> None:
    assert any("must be quoted text" in p for p in problems("sender: 611\n" + MINIMAL))


def test_every_problem_is_reported_at_once() -> None:
    text = MINIMAL.replace("fallback: help", "fallback: nope") + "max_segments: 99\n"
    assert len(problems(text)) >= 2


def test_secrets_may_come_from_the_environment() -> None:
    env = {"IVR_SMS_HMAC_SECRET": "s3cret", "IVR_SMS_SENDSMS_PASSWORD": "pw"}
    config = parse_sms_config(MINIMAL, env=env)
    assert (config.security.hmac_secret, config.kannel.sendsms_password) == ("s3cret", "pw")


def test_missing_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(SmsConfigInvalid, match="cannot read file"):
        load_sms_config(tmp_path / "nope.yaml")
