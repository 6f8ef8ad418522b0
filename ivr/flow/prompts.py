"""Prompts as the tree holds them, and their rendering into :class:`Play` actions.

A prompt is compiled once at load time into per-language tuples of parts.
Parts without templates are rendered at load time too, so most turns reuse one
shared, immutable Play instead of building a new one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ivr.config.templates import Scope, TextTemplate, ValueTemplate, as_scope
from ivr.flow.actions import Play, PromptPart, Sound, Text, Typed, TypedKind
from ivr.flow.errors import PromptValueError

_DIGIT_CHARS = frozenset("0123456789*#")


class TypedTemplate:
    """A typed prompt part whose value (and currency code) may come from templates."""

    __slots__ = ("kind", "value", "code", "where")

    def __init__(self, kind: TypedKind, value: ValueTemplate, code: TextTemplate | None, where: str) -> None:
        self.kind: TypedKind = kind
        self.value = value
        self.code = code
        self.where = where

    @property
    def is_static(self) -> bool:
        return self.value.is_static and (self.code is None or self.code.is_static)

    def render(self, context: Scope | Mapping[str, Any]) -> Typed:
        raw = self.value.evaluate(context)
        code = self.code.render(context) if self.code is not None else None
        return Typed(self.kind, coerce_typed(self.kind, raw, self.where), code)


PartTemplate = TextTemplate | Sound | TypedTemplate


def _render_part(part: PartTemplate, context: Scope | Mapping[str, Any]) -> PromptPart:
    if isinstance(part, TextTemplate):
        return Text(part.render(context))
    if isinstance(part, Sound):
        return part
    return part.render(context)


def _is_static(part: PartTemplate) -> bool:
    return isinstance(part, Sound) or part.is_static


class Prompt:
    """One prompt in every configured language, ready to become a Play."""

    __slots__ = ("prompt_id", "parts", "_static")

    def __init__(self, prompt_id: str, parts: Mapping[str, tuple[PartTemplate, ...]]) -> None:
        self.prompt_id = prompt_id
        self.parts = dict(parts)
        self._static: dict[str, Play] | None = None
        if all(_is_static(p) for seq in self.parts.values() for p in seq):
            empty: Mapping[str, Any] = {}
            self._static = {
                lang: Play(tuple(_render_part(p, empty) for p in seq), prompt_id, lang)
                for lang, seq in self.parts.items()
            }

    @property
    def is_static(self) -> bool:
        """True when no part uses a template: the Play is the same for every caller."""
        return self._static is not None

    def play(self, language: str, context: Scope | Mapping[str, Any]) -> Play:
        """The Play for ``language`` (the tree's fallback language when it has none)."""
        if self._static is not None:
            play = self._static.get(language)
            return play if play is not None else next(iter(self._static.values()))
        lang = language if language in self.parts else next(iter(self.parts))
        scope = as_scope(context)
        return Play(tuple(_render_part(p, scope) for p in self.parts[lang]), self.prompt_id, lang)

    def __repr__(self) -> str:
        return f"Prompt({self.prompt_id!r})"


def coerce_typed(kind: str, value: Any, where: str) -> int | Decimal | str | dt.date:
    """Read a template's value as the typed kind; a wrong value is a PromptValueError."""
    try:
        if kind in ("number", "currency"):
            return _to_number(value, integral_ok=kind == "number")
        if kind == "digits":
            text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None
            if text and all(c in _DIGIT_CHARS for c in text):
                return text
        elif kind == "date":
            if isinstance(value, dt.datetime):
                return value.date()
            if isinstance(value, dt.date):
                return value
            if isinstance(value, str):
                return dt.date.fromisoformat(value.strip())
    except (ValueError, InvalidOperation, TypeError):
        pass
    raise PromptValueError(where, kind, value)


def _to_number(value: Any, *, integral_ok: bool) -> int | Decimal:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        return value if integral_ok else Decimal(value)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        number = Decimal(value.strip().replace(" ", "").replace(",", ""))
    else:
        raise TypeError(type(value).__name__)
    if not number.is_finite():
        raise ValueError("not finite")
    if integral_ok and number == number.to_integral_value() and "." not in str(value):
        return int(number)
    return number
