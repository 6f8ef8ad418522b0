"""What every webhook endpoint (USSD, SMS) checks before it reads a request.

An IP allow-list on the socket's peer address, and an HMAC-SHA256 over the bytes as they
arrived, compared in constant time. Shared so both gateways apply one rule the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_in(networks: Iterable[Network], peer: str | None) -> bool:
    """Whether ``peer`` (an IP, IPv4-mapped IPv6 and zone ids allowed) is inside one of ``networks``."""
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def hmac_hex(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def same_secret_text(presented: str, expected: str) -> bool:
    """Constant-time comparison of a presented signature with the expected one."""
    return hmac.compare_digest(presented.encode("utf-8", "replace"), expected.encode("ascii"))
