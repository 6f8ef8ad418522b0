"""PINs stored as salted PBKDF2 hashes and checked in constant time.

A 4-6 digit PIN is a small key space, so hashing alone does not stop an offline
attacker who has the database; it does keep PINs out of backups, logs and admin
screens, and the constant-time compare keeps response timing from leaking digits.
The stored string carries its own parameters, so the work factor can be raised later
without invalidating existing hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import cache

ALGORITHM = "pbkdf2_sha256"
#: About 50 ms on the project VM (run off the event loop): unnoticeable on a call, costly in bulk.
DEFAULT_ITERATIONS = 120_000
SALT_BYTES = 16


def hash_pin(pin: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hash>`` for storing; never store the PIN itself."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, iterations)
    return f"{ALGORITHM}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_pin(pin: str, stored: str) -> bool:
    """True if ``pin`` matches ``stored``; a malformed stored hash never matches."""
    try:
        algorithm, iterations_text, salt_text, digest_text = stored.split("$")
        iterations = int(iterations_text)
        salt = base64.urlsafe_b64decode(salt_text)
        expected = base64.urlsafe_b64decode(digest_text)
    except ValueError:
        return False
    if algorithm != ALGORITHM or iterations < 1:
        return False
    actual = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(actual, expected)


def burn_time(pin: str, *, iterations: int = DEFAULT_ITERATIONS) -> None:
    """Spend what a real check costs, for an unknown account.

    Without it "no such account" answers faster than "wrong PIN", and the timing
    tells an attacker which account numbers exist.
    """
    verify_pin(pin, _dummy_hash(iterations))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


@cache
def _dummy_hash(iterations: int) -> str:
    return hash_pin("0000", iterations=iterations, salt=b"\0" * SALT_BYTES)
