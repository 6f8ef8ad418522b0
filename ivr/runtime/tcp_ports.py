"""Who holds a port: so "address in use" names the process instead of leaving a person to guess."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import IvrError


@dataclass(frozen=True)
class PortNeed:
    port: int
    proto: str  # "tcp" or "udp"
    host: str
    what: str


@dataclass(frozen=True)
class PortHolder:
    pid: int | None
    command: str


def is_free(need: PortNeed) -> bool:
    kind = socket.SOCK_STREAM if need.proto == "tcp" else socket.SOCK_DGRAM
    family = socket.AF_INET6 if ":" in need.host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((need.host, need.port))
        except OSError:
            return False
    return True


def _socket_inodes(port: int, proto: str) -> set[str]:
    inodes: set[str] = set()
    for table in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local = fields[1]
            if int(local.rsplit(":", 1)[1], 16) == port:
                # tcp: only listeners (state 0A); udp: any bound socket
                if proto == "udp" or fields[3] == "0A":
                    inodes.add(fields[9])
    return inodes


def holder_of(port: int, proto: str) -> PortHolder | None:
    """The process with a socket bound to ``port``, read from /proc (no ss/lsof needed)."""
    inodes = _socket_inodes(port, proto)
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                if os.readlink(fd) in targets:
                    cmd = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return PortHolder(int(pid_dir.name), cmd.strip())
        except OSError:
            continue
    if os.geteuid() == 0:  # root sees every process: the socket outlives its owner for a moment
        return PortHolder(None, "no process any more: the kernel is still releasing it after its owner ended")
    return PortHolder(None, "a process this user cannot see")


def wait_free(needs: list[PortNeed], timeout_s: float, *, poll_s: float = 0.1) -> bool:
    """Wait up to ``timeout_s`` for every port of ``needs`` to be free; whether they are.

    A process that was just killed may hold its sockets for a moment after it is gone from
    the process table; starting in that moment fails for no reason a person can act on.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if all(is_free(need) for need in needs):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def require_free(needs: list[PortNeed]) -> None:
    for need in needs:
        if is_free(need):
            continue
        holder = holder_of(need.port, need.proto)
        who = f"pid {holder.pid} ({holder.command})" if holder and holder.pid else (
            holder.command if holder else "an unknown process")
        raise IvrError(
            f"port {need.port}/{need.proto} on {need.host} ({need.what}) is already in use by {who}",
            hint=f"stop that process, or move {need.what} to another port in config/ivr.toml "
            "or its IVR_* environment variable",
            error_id="port-in-use",
        )
