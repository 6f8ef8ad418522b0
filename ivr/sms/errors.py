"""Typed failures of the SMS gateway, each with a stable ``error_id`` and a hint.

Load-time problems (``config/sms.yaml``) come all at once with ``path:line:col``;
request-time problems name the field that was wrong but never echo what a stranger
sent; send-time problems say which side failed (smsbox refused, smsbox unreachable).
"""

from __future__ import annotations

from collections.abc import Sequence

from ivr.config.problems import Problem
from ivr.errors import ConfigError, IvrError


class SmsError(IvrError):
    """Base of every error this package raises on purpose."""

    error_id = "sms-error"


class SmsConfigInvalid(ConfigError):
    """``config/sms.yaml`` holds problems; nothing was loaded."""

    error_id = "sms-config-invalid"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        shown = "\n".join(str(p) for p in self.problems[:20])
        more = f"\n... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"SMS configuration has {len(self.problems)} problem(s):\n{shown}{more}",
                         hint="fix config/sms.yaml (docs/sms.md describes every field)")


class BadSmsRequest(SmsError):
    """A request from the gateway we will not act on; the HTTP edge answers 400.

    ``field`` is the query parameter at fault; ``reason`` is safe to return and log
    (it never quotes the value, which may be personal data or an attack).
    """

    error_id = "sms-bad-request"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class RateLimited(SmsError):
    """The number sent more messages than the configured rate; nothing was done or stored."""

    error_id = "sms-rate-limited"

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"too many messages from this number; retry in {retry_after_s:.0f} s")


class TemplateFailed(SmsError):
    """A reply or notification template could not be rendered for this customer."""

    error_id = "sms-template-failed"

    def __init__(self, template: str, reason: str) -> None:
        self.template = template
        self.reason = reason
        super().__init__(f"template {template}: {reason}", hint="fix the template in config/sms.yaml")


class NotifyRefused(SmsError):
    """A notification was not sent on purpose: bad number, unknown template, opted out, no sender."""

    error_id = "sms-notify-refused"


class SendFailed(SmsError):
    """smsbox did not accept an outbound SMS; ``status`` is its HTTP status (None: unreachable)."""

    error_id = "sms-send-failed"

    def __init__(self, message: str, *, status: int | None = None, hint: str = "") -> None:
        self.status = status
        super().__init__(message, hint=hint or "check `ivr kannel status` and the smsbox log in var/kannel/")


class SmsboxUnreachable(SendFailed):
    """No connection to smsbox could be made: it provably never saw the message, so it may be sent again."""
