"""The error type every ``ivr`` failure a person must act on derives from.

Each error carries a stable ``error_id`` (for logs and scripts), the message, and a
``hint`` saying what to do: the CLI prints these instead of a traceback.
"""

from __future__ import annotations


class IvrError(Exception):
    error_id = "ivr-error"

    def __init__(self, message: str, *, hint: str = "", error_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if error_id is not None:
            self.error_id = error_id

    def __str__(self) -> str:
        return self.message


class ConfigError(IvrError):
    error_id = "config-invalid"


class CallControlError(IvrError):
    """A call cannot do what an agent asked now (the agent is not on it, it ended, the PBX refused).

    Raised by the voice layer's call control, read by the agent desk: both stand on this module."""

    error_id = "call-control-refused"
