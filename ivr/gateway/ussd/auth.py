"""Optional webhook authentication: who may post USSD requests, and proof the body is theirs.

Two independent checks from ``auth`` in ``config/ussd.yaml``. The IP allow-list looks at
the socket's peer address (a proxy in front must be in the list itself). The signature is
``sha256=<hex of HMAC-SHA256(secret, raw body)>`` in a header, compared in constant time,
over the bytes as received, before anything is parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from ivr.gateway.ussd.config import Auth

SCHEME = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """The header value a sender computes (tests and docs use it too)."""
    return SCHEME + hmac.new(secret, body, hashlib.sha256).hexdigest()


def peer_allowed(auth: Auth, peer: str | None) -> bool:
    """True without an allow-list; with one, only peers inside one of its networks."""
    if not auth.allow_from:
        return True
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in auth.allow_from)


def signature_ok(auth: Auth, body: bytes, presented: str | None) -> bool:
    """True without a secret; with one, only the right signature of exactly these bytes."""
    if auth.secret is None:
        return True
    if not presented or not presented.isascii():
        return False
    return hmac.compare_digest(presented.strip().lower().encode("ascii"), sign(auth.secret, body).encode("ascii"))
