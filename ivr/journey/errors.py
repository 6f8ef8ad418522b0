"""Typed errors of the journey store and the context tokens.

Each carries a stable ``error_id`` and the context a person needs (which backend, which
operation, what was wrong), never a stored value: journey data may hold personal data,
and a token is a bearer credential.
"""

from __future__ import annotations

from ivr.errors import IvrError


class JourneyError(IvrError):
    """Base of every error this package raises on purpose."""

    error_id = "journey-error"


class RequestInvalid(JourneyError, ValueError):
    """The caller asked for something the store cannot do (bad event, limit, ttl, value).

    Raised before anything is written, so a rejected append wrote nothing.
    """

    error_id = "journey-request-invalid"

    def __init__(self, what: str, problem: str) -> None:
        self.what = what
        self.problem = problem
        super().__init__(f"{what}: {problem}")


class StoreUnavailable(JourneyError):
    """The backend failed (database down, disk full, lock timeout).

    An append that raised this may or may not have been stored; one that returned was.
    """

    error_id = "journey-store-unavailable"

    def __init__(self, backend: str, operation: str, cause: BaseException) -> None:
        self.backend = backend
        self.operation = operation
        super().__init__(
            f"journey store ({backend}) could not {operation}: {type(cause).__name__}: {cause}",
            hint="check the database is reachable and has disk space; callers still reach agents without it",
        )


class WriteConflict(JourneyError):
    """A conditional kv put (:attr:`~ivr.journey.ports.KvPut.expect`) found another value
    stored: another process (or a retry) wrote the entry since the caller read it. Nothing
    of that ``put_and_append`` was written; read the entry again and redo the work."""

    error_id = "journey-write-conflict"

    def __init__(self, backend: str, namespace: str, key: str) -> None:
        self.backend = backend
        self.namespace = namespace
        self.key = key
        super().__init__(f"journey store ({backend}): kv entry {namespace}/{key[:32]} changed since it was read")


class StoreClosed(JourneyError):
    """The store was used after :meth:`close`."""

    error_id = "journey-store-closed"

    def __init__(self, backend: str, operation: str) -> None:
        self.backend = backend
        self.operation = operation
        super().__init__(f"journey store ({backend}) is closed; cannot {operation}")


class TokenError(JourneyError):
    """A context token could not be turned into a claim; ``reason`` says why, for metrics."""

    error_id = "context-token-error"

    def __init__(self, reason: str, token: str) -> None:
        self.reason = reason
        # Enough to correlate in logs; not enough to replay.
        self.token_prefix = token[:8]
        super().__init__(f"context token {self.token_prefix!r}...: {reason}")


class TokenInvalid(TokenError):
    """Malformed, forged, signed with another secret, or unknown to the store."""

    error_id = "context-token-invalid"


class TokenExpired(TokenError):
    """Well signed but past its expiry: the desktop should ask for a fresh one."""

    error_id = "context-token-expired"
