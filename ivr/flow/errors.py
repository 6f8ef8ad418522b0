"""Typed errors of the flow package.

Load-time errors carry every problem at once (:class:`TreeInvalid`); call-time
errors carry the node and what went wrong, so the host can log it, send the
caller to its fallback and the journey shows where the flow broke. Each class
has a stable ``error_id`` for logs and metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

from ivr.config.errors import TemplateFailed
from ivr.config.problems import Problem


class FlowError(Exception):
    """Base of every error this package raises on purpose; hosts catch this one."""

    error_id = "flow-error"


class TreeInvalid(FlowError):
    """The menu files hold problems; the tree was not built."""

    error_id = "tree-invalid"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        shown = "\n".join(str(p) for p in self.problems[:20])
        more = f"\n... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"menu tree has {len(self.problems)} problem(s):\n{shown}{more}")


class UnknownChannel(FlowError):
    """A session was asked for a channel the engine does not serve."""

    error_id = "unknown-channel"

    def __init__(self, channel: str) -> None:
        self.channel = channel
        super().__init__(f"unknown channel {channel!r}; expected 'voice', 'ussd' or 'sms'")


class SessionError(FlowError):
    """Something went wrong during a call; ``node`` says where."""

    error_id = "session-error"

    def __init__(self, message: str, *, node: str | None = None) -> None:
        self.node = node
        super().__init__(f"{message} (at node {node!r})" if node else message)


class UnexpectedEvent(SessionError):
    """The host sent an event the session cannot take in its current state."""

    error_id = "unexpected-event"

    def __init__(self, event: object, state: str, *, node: str | None = None) -> None:
        self.event = event
        self.state = state
        super().__init__(f"{type(event).__name__} is not expected while {state}", node=node)


class SessionFinished(SessionError):
    """The session already routed or hung up; it takes no more input."""

    error_id = "session-finished"

    def __init__(self, event: object, *, node: str | None = None) -> None:
        self.event = event
        super().__init__(f"{type(event).__name__} after the session finished", node=node)


class NoEntryPoint(SessionError):
    """Neither the session, numbers.yaml nor the tree names where to start."""

    error_id = "no-entry-point"

    def __init__(self, dnis: str | None) -> None:
        self.dnis = dnis
        super().__init__(f"no entry point for dialled number {dnis!r} and the tree has no 'entry'")


class LoopDetected(SessionError):
    """Too many nodes ran without waiting for the caller; validation should prevent this."""

    error_id = "loop-detected"

    def __init__(self, steps: int, *, node: str | None = None) -> None:
        self.steps = steps
        super().__init__(f"{steps} nodes ran without waiting for input", node=node)


class PromptValueError(SessionError):
    """A typed prompt value (number, currency, date, digits) could not be read as that type."""

    error_id = "prompt-value"

    def __init__(self, where: str, kind: str, value: object) -> None:
        self.where = where
        self.kind = kind
        self.value_type = type(value).__name__
        node = where.split(".", 1)[0]
        super().__init__(f"{where}: {type(value).__name__} value is not a valid {kind}", node=node)

__all__ = ["TemplateFailed"]  # raised by ivr.config.templates while a session renders
