from __future__ import annotations

import pytest

from ivr.errors import ConfigError
from ivr.runtime.rootfs import host_debian_mirror
from ivr.settings import load_settings


def test_embedded_defaults_listen_on_loopback_only():
    s = load_settings(env={})

    assert {s.sip.bind, s.ami.bind, s.ari.bind, s.agi.host, s.http.host} == {"127.0.0.1"}
    assert (s.sip.port, s.ami.port, s.ari.port, s.agi.port, s.http.port) == (5060, 5038, 8088, 4573, 8080)


def test_environment_overrides_the_file():
    assert load_settings(env={"IVR_AMI_SECRET": "s3cret"}).ami.secret == "s3cret"


def test_a_non_number_port_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"setting \[ami\] port = 'abc' is not a int"):
        load_settings(env={"IVR_AMI_PORT": "abc"})


def test_unknown_key_in_the_file_is_named(tmp_path):
    cfg = tmp_path / "ivr.toml"
    cfg.write_text("[ami]\nprot = 1\n")

    with pytest.raises(ConfigError, match=r"unknown setting \[ami\] prot"):
        load_settings(cfg, env={})


def test_mirror_is_read_from_deb822_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\n\nTypes: deb\nURIs: http://mirror.example/debian\n")

    assert host_debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_is_read_from_one_line_sources(tmp_path):
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://mirror.example/debian/ bookworm main\n")

    assert host_debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_no_mirror_is_an_error_with_a_hint(tmp_path):
    with pytest.raises(Exception) as err:
        host_debian_mirror(tmp_path)
    assert "IVR_ASTERISK_MIRROR" in err.value.hint  # type: ignore[attr-defined]


@pytest.mark.parametrize(("host", "url"), [
    ("127.0.0.1", "http://127.0.0.1:8080"),
    ("0.0.0.0", "http://127.0.0.1:8080"),  # a wildcard bind is reached on loopback
    ("", "http://127.0.0.1:8080"),
    ("::", "http://[::1]:8080"),
    ("::1", "http://[::1]:8080"),  # an IPv6 address needs its brackets in a URL
    ("10.1.2.3", "http://10.1.2.3:8080"),
])
def test_the_http_listener_is_reached_from_this_machine_at_its_local_url(host: str, url: str) -> None:
    from ivr.settings import HttpSettings

    assert HttpSettings(host=host, port=8080).local_url == url


def test_a_controller_serves_its_own_asterisk_over_ari_unless_told_the_nodes():
    assert load_settings(env={}).ari.node_list(5038) == [("127.0.0.1", 8088, 5038)]
    assert load_settings(env={"IVR_ARI_NODES": "10.0.0.5:8088:5038, 10.0.0.6:8088:5038"}).ari.node_list(5038) == [
        ("10.0.0.5", 8088, 5038), ("10.0.0.6", 8088, 5038)]


def test_an_ari_node_without_both_ports_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"\[ari\] nodes: '10.0.0.5:8088' is not host:ari_port:ami_port"):
        load_settings(env={"IVR_ARI_NODES": "10.0.0.5:8088"}).ari.node_list(5038)
