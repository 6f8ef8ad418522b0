"""Typed failures of the USSD gateway, each with a stable ``error_id``.

Two families: a request the aggregator got wrong (:class:`BadRequest`, answered 400 with
the reason, never a stored value) and a session the gateway cannot carry on
(:class:`ReplayFailed`, answered with an END screen: the subscriber dials again).
Configuration mistakes are :class:`UssdConfigInvalid`, found when the file is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence

from ivr.config.problems import Problem
from ivr.errors import ConfigError, IvrError


class UssdError(IvrError):
    error_id = "ussd-error"


class BadRequest(UssdError):
    """The request breaks the protocol: the HTTP side answers 400 with :attr:`reason`.

    ``reason`` names the field and the rule, never the value: the value is hostile input
    and may be huge or carry control characters.
    """

    error_id = "ussd-bad-request"

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = self.message
        self.field = field


class SessionMismatch(BadRequest):
    """``text`` does not continue the session's history: not the Africa's Talking protocol."""

    error_id = "ussd-session-mismatch"


class ReplayFailed(UssdError):
    """A stored session could not be rebuilt the way it was played (changed tree, bad record)."""

    error_id = "ussd-replay-failed"


class UssdConfigInvalid(ConfigError):
    """``config/ussd.yaml`` has problems; every one is listed as ``path:line:col: message``."""

    error_id = "ussd-config-invalid"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("USSD configuration has problems:\n" + "\n".join(str(p) for p in self.problems),
                         hint="fix the file and reload; see docs/ussd.md")
