"""A menu turn as the text screen a USSD or SMS caller sees.

Voice hosts say typed values with Asterisk (SAY NUMBER, SAY DIGITS); text hosts
format them here. The screen is the prompt text followed by one ``"1. Balance"``
line per visible option, which is also what the validator measures against the
USSD limit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from ivr.flow.actions import Action, Collect, MenuChoice, Play, PromptPart, Sound, Text, Typed

#: Labels of the two choices of a `confirm:` prompt (keys 1 and 2), by language.
CONFIRM_LABELS = {"en": ("Yes", "No"), "ru": ("Да", "Нет")}
_NO_SPACE_BEFORE = ".,!?;:)»"


def format_typed(part: Typed) -> str:
    """Text for a typed value: numbers grouped ("1,250"), currency "1,250.00 RUB", dates ISO."""
    value = part.value
    if part.kind == "currency":
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
        text = f"{amount:,.2f}"
        return f"{text} {part.currency_code}" if part.currency_code else text
    if part.kind == "number":
        return f"{value:,}" if isinstance(value, (int, Decimal)) else str(value)
    if part.kind == "date":
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    return str(value)


def format_part(part: PromptPart, *, sounds: bool = False) -> str:
    """One part as text; a recording has no text (``[sound:NAME]`` when ``sounds``)."""
    if isinstance(part, Text):
        return part.text
    if isinstance(part, Typed):
        return format_typed(part)
    assert isinstance(part, Sound)
    return f"[sound:{part.name}]" if sounds else ""


def format_parts(parts: Iterable[PromptPart], *, sounds: bool = False) -> str:
    """Parts joined by single spaces, with no space before closing punctuation."""
    out = ""
    for part in parts:
        text = format_part(part, sounds=sounds).strip()
        if not text:
            continue
        if out and text[0] not in _NO_SPACE_BEFORE:
            out += " "
        out += text
    return out


def option_lines(choices: Iterable[MenuChoice]) -> list[str]:
    return [f"{c.key}. {c.label}" for c in choices]


def render_screen(actions: Iterable[Action], *, sounds: bool = False) -> str:
    """The screen for one turn: every Play's text, then the options of the Collect, if any."""
    lines: list[str] = []
    for action in actions:
        if isinstance(action, Play):
            text = format_parts(action.parts, sounds=sounds)
            if text:
                lines.append(text)
        elif isinstance(action, Collect):
            lines.extend(option_lines(action.options))
    return "\n".join(lines)
