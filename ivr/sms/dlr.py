"""Delivery reports: the reference we hand Kannel, and what its report means.

Kannel calls a DLR URL we give it (per reply in ``X-Kannel-DLR-Url``, per outbound SMS
in ``dlr-url``) and substitutes its escapes (``%d`` the status). Our part of the URL
carries the interaction and the journey key, so a report lands on the right customer
without a lookup. Both are base64url, never percent-encoded: Kannel reads ``%C``,
``%D``... in a DLR URL as escapes of its own, and a percent-encoded byte of a
non-ASCII key would be rewritten. With a shared secret the reference is signed, so a
forged report cannot write into another customer's journey.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from ivr.sms.errors import BadSmsRequest

DeliveryStatus = Literal["delivered", "failed", "buffered", "accepted", "rejected", "unknown"]

#: Kannel's DLR types (the ``%d`` escape); the mask asks for a sum of them.
KANNEL_DLR: dict[int, DeliveryStatus] = {1: "delivered", 2: "failed", 4: "buffered", 8: "accepted", 16: "rejected"}
#: What Kannel fills in; the rest of the query is ours.
KANNEL_ESCAPES = "status=%d&answer=%A"
MAX_REF_CHARS = 512


@dataclass(frozen=True)
class DeliveryReport:
    """One report from Kannel about one SMS we sent, translated from its query string."""

    interaction: str
    journey_key: str
    code: int
    answer: str | None = None  # the SMSC's words ("NACK/0x0b/Invalid Destination Address")

    @property
    def status(self) -> DeliveryStatus:
        return KANNEL_DLR.get(self.code, "unknown")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _unb64(text: str, field: str) -> str:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise BadSmsRequest(field, "not a reference we issued") from None


def _signature(secret: str, ref: str) -> str:
    return hmac.new(secret.encode("utf-8"), ref.encode("ascii"), hashlib.sha256).hexdigest()[:32]


def encode_ref(interaction: str, journey_key: str, secret: str = "") -> dict[str, str]:
    """The query parameters naming one sent SMS (``ref``, and ``sig`` with a secret)."""
    ref = f"{_b64(interaction)}.{_b64(journey_key)}"
    return {"ref": ref, "sig": _signature(secret, ref)} if secret else {"ref": ref}


def decode_ref(ref: str | None, sig: str | None, secret: str = "") -> tuple[str, str]:
    """``(interaction, journey key)`` from a report; :class:`BadSmsRequest` for anything we did not issue."""
    if not ref:
        raise BadSmsRequest("ref", "missing")
    if len(ref) > MAX_REF_CHARS or ref.count(".") != 1:
        raise BadSmsRequest("ref", "not a reference we issued")
    if secret and not (sig and hmac.compare_digest(sig.encode("ascii", "replace"), _signature(secret, ref).encode())):
        raise BadSmsRequest("sig", "missing or wrong signature")
    left, right = ref.split(".")
    interaction, key = _unb64(left, "ref"), _unb64(right, "ref")
    if not interaction or not key or any(c < " " for c in interaction + key):
        raise BadSmsRequest("ref", "not a reference we issued")
    return interaction, key


def callback_url(base: str, interaction: str, journey_key: str, secret: str = "") -> str:
    """The DLR URL for Kannel: ``<base>/sms/dlr?ref=...&status=%d&answer=%A``."""
    return f"{base.rstrip('/')}/sms/dlr?{urlencode(encode_ref(interaction, journey_key, secret))}&{KANNEL_ESCAPES}"
