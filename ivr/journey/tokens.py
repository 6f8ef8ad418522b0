"""Context tokens: what travels with the call to the agent's desktop instead of the context.

The call reaches the agent carrying a token (a SIP header, a channel variable); the desktop
resolves it to a :class:`ContextClaim` and fetches the journey. The token itself carries no
personal data: it is 128 random bits, an expiry and an HMAC-SHA256 signature,

    ``<id: 22 chars base64url>.<expiry: unix seconds>.<signature: 43 chars base64url>``

(77 characters from ``A-Za-z0-9-_.``, a SIP ``token``, so it fits a header value unquoted),
and the claim is kept server-side in the kv table under namespace ``"token"``, expiring
with the token. Resolution checks the shape, then the signature with ``hmac.compare_digest``,
then the expiry, and only then touches the store: a forged or stale token costs one HMAC,
never a database round trip, so guessing cannot load the database.

A claim written while the journey store is away waits in the journey's spool (a
:class:`ClaimSpool`), in order with the call's events: the call still hands its agent a token,
which resolves once the store is back. Without a spool, issuing fails with the store.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ivr.journey.errors import RequestInvalid, TokenExpired, TokenInvalid
from ivr.journey.ports import Clock, KvStore

log = logging.getLogger(__name__)

NAMESPACE = "token"
REVOKED = "revoked_at"  # a revoked token's tombstone in place of its claim
DEFAULT_TTL_S = 3600
MIN_SECRET_BYTES = 32  # as long as the HMAC-SHA256 output: a shorter secret weakens the signature
ID_BYTES = 16

_DOMAIN = b"ivr-context-token-v1\x00"  # a signature made for anything else never verifies here
_SHAPE = re.compile(r"([A-Za-z0-9_-]{22})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class ContextClaim:
    """What the agent's desktop learns from a token: whose journey, and why the call came.

    ``issued_at`` and ``expires_at`` are set by :meth:`TokenService.issue`; values passed in
    are replaced. ``journey_since`` is where the desktop starts reading the journey.
    """

    customer_key: str
    interaction: str
    queue: str
    priority: int
    route_reason: str
    channel: str
    journey_since: float
    issued_at: float = 0.0
    expires_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextClaim:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class ClaimSpool(Protocol):
    """Where a claim waits when the store is away (:class:`ivr.journey.spool.SpooledJourney`)."""

    async def kv_put_or_spool(self, namespace: str, key: str, value: dict[str, Any],
                              ttl_s: float) -> Literal["stored", "spooled"]: ...


class TokenService:
    """Issues and resolves context tokens; the claims live in ``store``'s kv table."""

    def __init__(self, secret: bytes, store: KvStore, *, ttl_s: int = DEFAULT_TTL_S, clock: Clock = time.time,
                 spool: ClaimSpool | None = None) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
            raise RequestInvalid("token secret", f"must be at least {MIN_SECRET_BYTES} random bytes")
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
            raise RequestInvalid("token ttl_s", f"must be a positive whole number of seconds, got {ttl_s!r}")
        self._secret = secret
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._spool = spool

    async def issue(self, claim: ContextClaim) -> str:
        """Store ``claim`` (stamped with issue and expiry times) and return its token."""
        now = self._clock()
        expiry = math.floor(now) + self._ttl_s
        token_id = _b64(secrets.token_bytes(ID_BYTES))
        stamped = dataclasses.replace(claim, issued_at=now, expires_at=float(expiry))
        if self._spool is None:
            await self._store.kv_put(NAMESPACE, token_id, stamped.to_dict(), ttl_s=expiry - now)
        elif await self._spool.kv_put_or_spool(NAMESPACE, token_id, stamped.to_dict(), ttl_s=expiry - now) == "spooled":
            log.warning("context token for %s issued while the journey store is away: it resolves once the "
                        "store is back", claim.interaction)
        return f"{token_id}.{expiry}.{self._sign(token_id, str(expiry))}"

    async def resolve(self, token: str) -> ContextClaim:
        """The claim behind ``token``; :class:`TokenInvalid` or :class:`TokenExpired` otherwise."""
        token_id, expiry = self.verify(token)
        if self._clock() >= expiry:
            raise TokenExpired("expired", token)
        data = await self._store.kv_get(NAMESPACE, token_id)
        if data is None:
            raise TokenInvalid("unknown", token)
        if REVOKED in data:
            raise TokenInvalid("revoked", token)
        try:
            claim = ContextClaim.from_dict(data)
        except TypeError as exc:  # written by another version, or not by us
            raise TokenInvalid("claim unreadable", token) from exc
        if claim.expires_at != expiry:  # the store and the signature disagree: trust neither
            raise TokenInvalid("claim mismatch", token)
        return claim

    async def revoke(self, token: str) -> ContextClaim:
        """End ``token`` now, on every controller sharing the store: the claim it held, for the audit.

        The claim is replaced by a tombstone that expires with the token, so a leaked token
        (a URL in a browser history, a log line) stops resolving at once. Raises like
        :meth:`resolve` for a token that does not resolve (already revoked included).
        """
        claim = await self.resolve(token)
        token_id, expiry = self.verify(token)
        now = self._clock()
        await self._store.kv_put(NAMESPACE, token_id, {REVOKED: now}, ttl_s=max(expiry - now, 1.0))
        return claim

    def verify(self, token: str) -> tuple[str, int]:
        """Shape and signature only (no clock, no store): ``(id, expiry)`` or :class:`TokenInvalid`."""
        match = _SHAPE.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            raise TokenInvalid("malformed", token if isinstance(token, str) else "")
        token_id, expiry, signature = match.groups()
        if not hmac.compare_digest(self._sign(token_id, expiry), signature):
            raise TokenInvalid("bad signature", token)
        return token_id, int(expiry)

    def _sign(self, token_id: str, expiry: str) -> str:
        message = _DOMAIN + token_id.encode("ascii") + b"." + expiry.encode("ascii")
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
