"""What a session asks the host to do, and the prompt parts it asks to play or show.

The engine never touches a channel: a voice host turns these into AGI/ARI
commands, a USSD or SMS host into text screens (see :mod:`ivr.flow.render_text`).
Typed prompt values stay typed so each channel can say or format them its own way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

MASK = "***"

TypedKind = Literal["number", "digits", "currency", "date"]
TYPED_KINDS: tuple[str, ...] = ("number", "digits", "currency", "date")


@dataclass(frozen=True, slots=True)
class Text:
    """Text to speak (TTS) or show."""

    text: str


@dataclass(frozen=True, slots=True)
class Sound:
    """A recorded prompt, by name without extension, looked up in ``sounds/<language>/``."""

    name: str


@dataclass(frozen=True, slots=True)
class Typed:
    """A value the channel renders: SAY NUMBER / SAY DIGITS on voice, formatted text elsewhere."""

    kind: TypedKind
    value: int | Decimal | str | dt.date
    currency_code: str | None = None


PromptPart = Text | Sound | Typed


@dataclass(frozen=True, slots=True)
class MenuChoice:
    """A visible menu option: its key and its label in the session's language."""

    key: str
    label: str


@dataclass(frozen=True, slots=True)
class Play:
    """Play (or show) these parts in order. ``prompt_id`` is stable: ``<node>.<role>[.<n>]``."""

    parts: tuple[PromptPart, ...]
    prompt_id: str
    language: str


@dataclass(frozen=True, slots=True)
class Collect:
    """Wait for the caller's input with these limits, then send Digits, Speech or Timeout.

    ``escape_digits`` are the keys that mean something now (a menu's visible keys),
    so a voice host can let them interrupt the prompt. ``options`` lists the visible
    choices with labels for text channels; ``grammar`` lists the spoken keywords.
    """

    max_digits: int
    min_digits: int
    timeout_s: float
    interdigit_timeout_s: float
    terminator: str
    escape_digits: str
    masked: bool
    grammar: tuple[str, ...] = ()
    end_of_speech_s: float = 0.8  # silence that ends a spoken answer (model.DEFAULT_END_OF_SPEECH_S)
    options: tuple[MenuChoice, ...] = ()
    node: str = ""


@dataclass(frozen=True, slots=True, repr=False)
class RunAction:
    """Run the named operation (``balance``, ``service_on``...) and answer with ActionResult."""

    name: str
    args: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    masked_args: frozenset[str] = frozenset()

    def safe_args(self) -> dict[str, Any]:
        """The args with masked values replaced, for logs and the journey."""
        return {k: (MASK if k in self.masked_args else v) for k, v in self.args.items()}

    def __repr__(self) -> str:
        return f"RunAction(name={self.name!r}, args={self.safe_args()!r})"


@dataclass(frozen=True, slots=True, repr=False)
class SetVariable:
    """A collect node stored the caller's input; the host may keep it for the call's duration."""

    name: str
    value: str
    masked: bool = False

    def __repr__(self) -> str:
        value = MASK if self.masked else repr(self.value)
        return f"SetVariable(name={self.name!r}, value={value}, masked={self.masked})"


@dataclass(frozen=True, slots=True)
class RouteToQueue:
    """Hand the call to agents in ``queue``; the session is finished."""

    queue: str
    priority: int
    reason: str


@dataclass(frozen=True, slots=True)
class HangUp:
    """End the call; the session is finished."""

    reason: str


Action = Play | Collect | RunAction | SetVariable | RouteToQueue | HangUp
