"""Everything the system starts listens where the configuration says: Asterisk, the controller, Kannel.

The real processes, the embedded defaults (every listener on 127.0.0.1), and the kernel's own
list of their sockets (``/proc``, what ``ss -ltnup`` prints): a server that binds every
address on its own shows up here even though no file of ours says so.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.composition import load_sms_settings
from ivr.exposure import is_loopback
from ivr.harness.sipp import free_port
from ivr.runtime.kannel import KannelRuntime
from ivr.runtime.listening import ListeningSocket, listening_sockets
from ivr.runtime.local_asterisk import LocalAsterisk
from ivr.settings import Settings
from ivr.sms.config import KannelConfig
from tests.integration.kannel_support import require_kannel

pytestmark = pytest.mark.asterisk


def ephemeral_range() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def is_dns_client(sock: ListeningSocket) -> bool:
    """pjproject's DNS resolver inside Asterisk: two unconnected UDP sockets on a kernel-chosen port
    (IPv4 and IPv6) that send queries to the nameservers. Clients, not listeners we configure."""
    return sock.proto == "udp" and sock.command == "asterisk" and sock.port in ephemeral_range()


@pytest.fixture
def kannel(asterisk: Settings, tmp_path: Path) -> Iterator[KannelRuntime]:
    require_kannel()
    sms = load_sms_settings(asterisk)
    ports = {name: free_port(socket.SOCK_STREAM) for name in ("admin_port", "smsbox_port", "fake_smsc_port",
                                                              "sendsms_port")}
    runtime = KannelRuntime(asterisk, KannelConfig(**{**sms.kannel.__dict__, **ports}),
                            url=asterisk.http.local_url, state_dir=tmp_path / "kannel")
    runtime.up()
    try:
        yield runtime
    finally:
        runtime.down()


def test_every_listener_of_the_running_system_is_the_configured_one_on_loopback(asterisk, controller, kannel):
    assert controller.proc is not None
    pids = [*LocalAsterisk(asterisk).asterisk_pids(), controller.proc.pid, *kannel.pids().values()]

    found = [s for s in listening_sockets(pids) if not is_dns_client(s)]

    beyond = [str(s) for s in found if not is_loopback(s.address)]
    assert beyond == [], f"listening beyond loopback: {beyond}"
    k = kannel.kannel
    configured = {
        ("tcp", asterisk.sip.port), ("udp", asterisk.sip.port), ("tcp", asterisk.ami.port),
        ("tcp", asterisk.ari.port), ("tcp", asterisk.agi.port), ("tcp", asterisk.http.port),
        ("tcp", k.admin_port), ("tcp", k.smsbox_port), ("tcp", k.fake_smsc_port), ("tcp", k.sendsms_port),
    }
    assert {(s.proto, s.port) for s in found} == configured
