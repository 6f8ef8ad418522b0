"""What the host tells a session: the caller's input and the outcome of named actions.

Events are plain frozen values so that a call can be replayed from a log and a
test can be written as a list of events and the actions expected back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Started:
    """The call (or USSD/SMS session) began; ``dnis`` picks the entry point from numbers.yaml."""

    dnis: str | None = None


@dataclass(frozen=True, slots=True)
class Digits:
    """Keys the caller pressed (DTMF, or the text of a USSD/SMS reply). ``""`` means no input."""

    digits: str

    def __repr__(self) -> str:
        # Digits may be a PIN; what they mean is known only to the session, which journals them masked.
        return f"Digits(<{len(self.digits)} keys>)"


@dataclass(frozen=True, slots=True)
class Speech:
    """A recognised utterance; matched against the visible options' keywords."""

    text: str
    confidence: float = 1.0

    def __repr__(self) -> str:
        return f"Speech(<{len(self.text)} chars>, confidence={self.confidence})"


@dataclass(frozen=True, slots=True)
class Timeout:
    """The caller gave no input before the Collect's timeout."""


@dataclass(frozen=True, slots=True)
class Hangup:
    """The caller hung up (or the USSD session was closed by the network)."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The host ran the named action the session asked for; ``data`` becomes ``result``.

    ``customer``, when the host sets it, is the customer as the action left them (a service
    switched on, a tariff changed): the session's ``customer.*`` from then on, so the next
    menu does not offer what was just done.
    """

    name: str
    ok: bool
    data: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    customer: Mapping[str, Any] | None = None


Event = Started | Digits | Speech | Timeout | Hangup | ActionResult
