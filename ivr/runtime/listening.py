"""Which addresses our processes listen on, read from ``/proc`` (what ``ss -ltnup`` shows).

The configuration says where each listener binds; this says where it really did, so a test
(and an operator before go-live) can compare the two. A server that binds ``0.0.0.0`` on
its own (Kannel's fake SMSC did) shows up here and nowhere in our files.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_TCP_LISTEN = "0A"
PROC = Path("/proc")


@dataclass(frozen=True, order=True)
class ListeningSocket:
    """One socket a process can be reached on: TCP in LISTEN, or a bound UDP socket."""

    proto: str  # tcp | udp
    address: str
    port: int
    pid: int
    command: str = ""

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.proto} {host}:{self.port} ({self.command or 'pid'} {self.pid})"


def decode_address(hex_address: str) -> tuple[str, int]:
    """``/proc/net/tcp``'s ``0100007F:1F90`` as ``("127.0.0.1", 8080)`` (IPv6 too)."""
    host_hex, _, port_hex = hex_address.partition(":")
    raw = bytes.fromhex(host_hex)
    # The kernel prints each 32-bit word in host (little-endian) order.
    packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(packed)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address), int(port_hex, 16)


def with_descendants(pids: Iterable[int], proc: Path = PROC) -> set[int]:
    """``pids`` and every process started under them (the controller's journey writer, say)."""
    parents: dict[int, int] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found = set(pids)
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in found} - found
        found |= children
        grew = bool(children)
    return found


def _socket_owners(pids: Iterable[int], proc: Path) -> dict[str, int]:
    owners: dict[str, int] = {}
    for pid in pids:
        try:
            fds = list((proc / str(pid) / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[target[8:-1]] = pid
    return owners


def _command(pid: int, proc: Path) -> str:
    try:
        return (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def listening_sockets(pids: Iterable[int], proc: Path = PROC) -> list[ListeningSocket]:
    """Every TCP listener and bound UDP socket of ``pids`` (and their descendants), sorted."""
    owners = _socket_owners(with_descendants(pids, proc), proc)
    found: set[ListeningSocket] = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if inode not in owners or (table.startswith("tcp") and state != _TCP_LISTEN):
                continue
            if table.startswith("udp") and decode_address(fields[2])[1] != 0:
                continue  # a connected UDP socket (a client's) answers no one else
            address, port = decode_address(local)
            pid = owners[inode]
            found.add(ListeningSocket(table.rstrip("6"), address, port, pid, _command(pid, proc)))
    return sorted(found)
