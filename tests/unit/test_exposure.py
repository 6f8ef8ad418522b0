"""No demo secret behind a listener that other machines can reach."""

from __future__ import annotations

import pytest

from ivr.exposure import (
    DemoSecretsExposed,
    asterisk_listeners,
    asterisk_secrets,
    controller_listeners,
    controller_secrets,
    is_loopback,
    refuse_weak_secrets,
)
from ivr.settings import load_settings
from ivr.sms.config import KannelConfig, Security, gateway_secrets

STRONG = {
    "IVR_TOKENS_SECRET": "t" * 40, "IVR_AGENT_API_KEY": "a" * 24, "IVR_ADMIN_KEY": "d" * 24,
    "IVR_AMI_SECRET": "m" * 24, "IVR_ARI_PASSWORD": "r" * 24, "IVR_SIP_AGENT_PASSWORD": "s" * 16,
}
EVERY_DEMO_SECRET = ["[tokens] secret", "[agent_api] key", "[admin] key", "[ami] secret", "[ari] password",
                     "[sip] agent_password"]


def refusal(env: dict[str, str]) -> str | None:
    settings = load_settings(env={"IVR_CONFIG": "/nonexistent.toml", **env})
    try:
        refuse_weak_secrets(controller_listeners(settings) + asterisk_listeners(settings),
                            controller_secrets(settings))
    except DemoSecretsExposed as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.53", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("", False), ("::", False), ("10.0.0.5", False), ("172.28.0.21", False),
    ("ivr.example.com", False),
])
def test_only_a_loopback_address_counts_as_this_machine_only(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_embedded_defaults_start_on_loopback_with_their_demo_secrets() -> None:
    assert refusal({}) is None


@pytest.mark.parametrize("listener", ["IVR_HTTP_HOST", "IVR_AGI_HOST", "IVR_SIP_BIND", "IVR_AMI_BIND",
                                      "IVR_ARI_BIND"])
def test_any_listener_beyond_loopback_refuses_every_demo_secret_by_name(listener: str) -> None:
    message = refusal({listener: "0.0.0.0"})
    assert message is not None and "0.0.0.0" in message
    for setting in EVERY_DEMO_SECRET:
        assert setting in message
    assert "IVR_TOKENS_SECRET" in message and "openssl rand" in message


def test_strong_secrets_start_on_any_address() -> None:
    assert refusal({"IVR_HTTP_HOST": "0.0.0.0", "IVR_AMI_BIND": "0.0.0.0", **STRONG}) is None


@pytest.mark.parametrize(("variable", "value", "why"), [
    ("IVR_ADMIN_KEY", "demo-admin-key", "demo value"),
    ("IVR_AMI_SECRET", "change-me", "placeholder"),
    ("IVR_AGENT_API_KEY", "", "empty"),
    ("IVR_TOKENS_SECRET", "x" * 31, "shorter than 32"),
    ("IVR_ARI_PASSWORD", "short", "shorter than 16"),
])
def test_one_weak_secret_is_named_alone_with_its_variable(variable: str, value: str, why: str) -> None:
    message = refusal({"IVR_HTTP_HOST": "0.0.0.0", **STRONG, variable: value})
    assert message is not None and variable in message and why in message
    assert sum(line.startswith("  [") for line in message.splitlines()) == 1


def test_asterisk_alone_checks_its_own_listeners_and_logins() -> None:
    settings = load_settings(env={"IVR_CONFIG": "/nonexistent.toml", "IVR_HTTP_HOST": "0.0.0.0"})
    refuse_weak_secrets(asterisk_listeners(settings), asterisk_secrets(settings))  # HTTP is not Asterisk's
    exposed = load_settings(env={"IVR_CONFIG": "/nonexistent.toml", "IVR_ARI_BIND": "0.0.0.0"})
    with pytest.raises(DemoSecretsExposed, match=r"\[ari\] password"):
        refuse_weak_secrets(asterisk_listeners(exposed), asterisk_secrets(exposed))


def test_the_sms_gateways_demo_passwords_are_weak_and_a_set_hmac_secret_must_be_long() -> None:
    found = gateway_secrets(KannelConfig(), Security(hmac_secret="abc"))
    assert [s.env for s in found if s.weakness()] == ["IVR_SMS_SENDSMS_PASSWORD", "IVR_SMS_ADMIN_PASSWORD",
                                                      "IVR_SMS_HMAC_SECRET"]
    assert gateway_secrets(KannelConfig(), Security())[-1].env == "IVR_SMS_ADMIN_PASSWORD"  # unset: not required


def test_kannel_rendered_to_listen_beyond_loopback_refuses_its_demo_passwords(monkeypatch, tmp_path, capsys) -> None:
    from ivr.cli import main

    monkeypatch.setenv("IVR_SMS_SENDSMS_HOST", "172.28.0.40")
    for name in ("IVR_SMS_SENDSMS_PASSWORD", "IVR_SMS_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)

    assert main(["kannel", "render", "--out", str(tmp_path)]) == 2
    assert "IVR_SMS_SENDSMS_PASSWORD" in capsys.readouterr().err
    assert not (tmp_path / "kannel.conf").exists()


def test_kannel_for_another_address_with_a_strong_sendsms_password_renders(monkeypatch, tmp_path) -> None:
    from ivr.cli import main

    monkeypatch.setenv("IVR_SMS_SENDSMS_HOST", "172.28.0.40")
    monkeypatch.setenv("IVR_SMS_SENDSMS_PASSWORD", "a-long-random-sendsms-password")
    monkeypatch.delenv("IVR_SMS_ADMIN_PASSWORD", raising=False)  # the admin port stays on loopback

    assert main(["kannel", "render", "--out", str(tmp_path)]) == 0
    assert "sendsms-interface = 172.28.0.40" in (tmp_path / "kannel.conf").read_text()
