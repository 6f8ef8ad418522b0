"""Ports the local Asterisk and Kannel need: who holds them, and waiting for a killed owner's release."""

from __future__ import annotations

import os
import socket

from ivr.runtime.tcp_ports import PortNeed, holder_of, wait_free


def held_port() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_a_free_port_needs_no_wait() -> None:
    sock, port = held_port()
    sock.close()
    assert wait_free([PortNeed(port, "tcp", "127.0.0.1", "test")], timeout_s=0)


def test_a_port_still_held_is_reported_after_the_wait() -> None:
    sock, port = held_port()
    try:
        assert not wait_free([PortNeed(port, "tcp", "127.0.0.1", "test")], timeout_s=0.2, poll_s=0.05)
    finally:
        sock.close()


def test_the_holder_of_a_port_is_named_by_its_pid() -> None:
    sock, port = held_port()
    try:
        holder = holder_of(port, "tcp")
        assert holder is not None and holder.pid == os.getpid()
    finally:
        sock.close()
