"""Signed requests to the context API: HMAC-SHA256 over the timestamp and the body.

A client sends ``X-IVR-Client: <name>``, ``X-IVR-Timestamp: <unix seconds>`` and
``X-IVR-Signature: sha256=<hex of HMAC(key, "<timestamp>.<body>")>`` (the scheme Stripe and
Slack use for webhooks). The key itself never travels, a captured request cannot be
replayed after :data:`MAX_SKEW_S`, and within that window the event id makes a replay a
harmless duplicate.
"""

from __future__ import annotations

import hashlib
import hmac

CLIENT_HEADER = "X-IVR-Client"
TIMESTAMP_HEADER = "X-IVR-Timestamp"
SIGNATURE_HEADER = "X-IVR-Signature"
MAX_SKEW_S = 300.0
_PREFIX = "sha256="


def sign(key: str, timestamp: str, body: bytes) -> str:
    """The ``X-IVR-Signature`` value for ``body`` sent at ``timestamp`` (for clients and tests)."""
    digest = hmac.new(key.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def signed_headers(client: str, key: str, body: bytes, now: float) -> dict[str, str]:
    """Every header a signed request needs, for a client sending ``body`` at ``now``."""
    timestamp = str(int(now))
    return {CLIENT_HEADER: client, TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(key, timestamp, body),
            "Content-Type": "application/json"}


def signature_ok(key: str, timestamp: str | None, signature: str | None, body: bytes, now: float) -> bool:
    """Whether the request is from the holder of ``key`` and recent. Constant time in the signature."""
    if not timestamp or not signature or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > MAX_SKEW_S:
        return False
    expected = sign(key, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))
