"""kannel.conf rendered from the one template, and KannelRuntime's typed errors (no real Kannel needed)."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from ivr.runtime.kannel import (
    KannelError,
    KannelNotInstalled,
    KannelPortInUse,
    KannelRuntime,
    KannelStartFailed,
    controller_url,
    render_kannel_conf,
)
from ivr.settings import HttpSettings, Settings, load_settings
from ivr.sms.config import KannelConfig
from tests.conftest import REPO


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(load_settings(env={"IVR_HOME": str(REPO)}), http=HttpSettings("127.0.0.1", 18080))


def conf(settings: Settings, kannel: KannelConfig | None = None, state: Path = Path("/tmp/k")) -> str:
    kannel = kannel or KannelConfig()
    return render_kannel_conf(settings, kannel, url=controller_url(settings, kannel), state_dir=state)


def fake_binaries(tmp_path: Path, script: str = "exit 1") -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for box in ("bearerbox", "smsbox"):
        path = bin_dir / box
        path.write_text(f"#!/bin/sh\n{script}\n")
        path.chmod(0o755)
    return bin_dir


def test_get_url_points_at_the_controllers_http_port(settings: Settings) -> None:
    assert 'get-url = "http://127.0.0.1:18080/sms/kannel?from=%p&to=%P&text=%a&smsc=%i&id=%I&coding=%c&charset=%C"' \
        in conf(settings)


def test_controller_listening_on_all_interfaces_is_reached_on_loopback(settings: Settings) -> None:
    everywhere = dataclasses.replace(settings, http=HttpSettings("0.0.0.0", 9090))
    assert controller_url(everywhere, KannelConfig()) == "http://127.0.0.1:9090"


def test_configured_controller_url_wins(settings: Settings) -> None:
    kannel = KannelConfig(controller_url="http://controller:8080")
    assert '"http://controller:8080/sms/kannel?' in conf(settings, kannel)


def test_ports_account_and_state_dir_come_from_the_sms_config(settings: Settings) -> None:
    text = conf(settings, KannelConfig(admin_port=13100, sendsms_port=13113, sendsms_user="u"), Path("/srv/k"))
    for line in ("admin-port = 13100", "sendsms-port = 13113", 'username = "u"', 'log-file = "/srv/k/smsbox.log"'):
        assert line in text


def test_sendsms_binds_and_admits_where_the_sms_config_says(settings: Settings) -> None:
    text = conf(settings, KannelConfig(sendsms_host="172.28.0.40", sendsms_allow="127.0.0.1;172.28.0.21"))

    assert "sendsms-interface = 172.28.0.40" in text and 'user-allow-ip = "127.0.0.1;172.28.0.21"' in text


def test_every_placeholder_is_filled(settings: Settings) -> None:
    assert "{{" not in conf(settings)


def test_the_shipped_template_asks_for_what_the_gateway_needs(settings: Settings) -> None:
    text = conf(settings)
    for line in ("smsc = fake", "group = sms-service", "group = sendsms-user", "accept-x-kannel-headers = true",
                 "mo-recode = true", "omit-empty = true", "dlr-storage = internal"):
        assert line in text


def test_a_quote_in_a_secret_is_refused(settings: Settings) -> None:
    with pytest.raises(KannelError, match="quote"):
        conf(settings, KannelConfig(sendsms_password='pa"ss'))


def test_missing_binary_names_the_package(settings: Settings, tmp_path: Path) -> None:
    runtime = KannelRuntime(settings, KannelConfig(), state_dir=tmp_path / "state", binaries=tmp_path)
    with pytest.raises(KannelNotInstalled) as info:
        runtime.up()
    assert "apt-get install kannel" in info.value.hint


def test_port_in_use_is_a_typed_error_naming_the_port(settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        runtime = KannelRuntime(settings, KannelConfig(admin_port=port), state_dir=tmp_path / "state",
                                binaries=fake_binaries(tmp_path))
        with pytest.raises(KannelPortInUse, match=f"port {port}/tcp"):
            runtime.up()


def test_a_port_of_asterisk_or_the_controller_is_refused(settings: Settings, tmp_path: Path) -> None:
    runtime = KannelRuntime(settings, KannelConfig(sendsms_port=settings.ami.port), state_dir=tmp_path / "state",
                            binaries=fake_binaries(tmp_path))
    with pytest.raises(KannelPortInUse, match="AMI"):
        runtime.up()


def test_a_box_that_dies_at_start_up_is_reported_with_its_error(settings: Settings, tmp_path: Path) -> None:
    script = "echo \"2024-01-01 00:00:00 [1] [0] ERROR: Group 'core' may not contain field 'x'.\"; exit 1"
    free = [_free_port() for _ in range(4)]
    kannel = KannelConfig(admin_port=free[0], smsbox_port=free[1], fake_smsc_port=free[2], sendsms_port=free[3])
    runtime = KannelRuntime(settings, kannel, state_dir=tmp_path / "state", binaries=fake_binaries(tmp_path, script))
    with pytest.raises(KannelStartFailed, match="may not contain field 'x'"):
        runtime.up()
    assert runtime.pids() == {}


def test_status_of_a_kannel_that_never_started_is_stopped(settings: Settings, tmp_path: Path) -> None:
    status = KannelRuntime(settings, KannelConfig(), state_dir=tmp_path / "state").status()
    assert not status.running and status.pids == {}
    assert status.describe().startswith("stopped")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
