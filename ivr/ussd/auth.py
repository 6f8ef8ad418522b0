"""Optional webhook authentication: who may post USSD requests, and proof the body is theirs.

Two independent checks from ``auth`` in ``config/ussd.yaml``. The IP allow-list looks at
the socket's peer address (a proxy in front must be in the list itself). The signature is
``sha256=<hex of HMAC-SHA256(secret, raw body)>`` in a header, compared in constant time,
over the bytes as received, before anything is parsed.
"""

from __future__ import annotations

from ivr.ussd.config import Auth
from ivr.webhook import hmac_hex, peer_in, same_secret_text

SCHEME = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """The header value a sender computes (tests and docs use it too)."""
    return SCHEME + hmac_hex(secret, body)


def peer_allowed(auth: Auth, peer: str | None) -> bool:
    """True without an allow-list; with one, only peers inside one of its networks."""
    return not auth.allow_from or peer_in(auth.allow_from, peer)


def signature_ok(auth: Auth, body: bytes, presented: str | None) -> bool:
    """True without a secret; with one, only the right signature of exactly these bytes."""
    if auth.secret is None:
        return True
    if not presented or not presented.isascii():
        return False
    return same_secret_text(presented.strip().lower(), sign(auth.secret, body))
