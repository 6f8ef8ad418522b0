"""What a named action takes: its arguments, which are required, and what type each holds.

The built-in actions (balance, service on/off, ...) declare only the names they need; an
action an admin declares in ``config/actions.yaml`` declares every argument with a type,
so ``ivr validate`` can say at file:line that ``order: abc`` is not digits, that ``ordr``
is not an argument, or that ``order`` is missing, long before a caller reaches the node.
The same checks run on the value a caller keyed in, just before the request is sent
(:func:`check_value`), so a back end never sees an argument of the wrong type.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

TEXT, DIGITS, NUMBER, BOOLEAN = "text", "digits", "number", "boolean"
ARG_TYPES = (TEXT, DIGITS, NUMBER, BOOLEAN)
MAX_TEXT_CHARS = 500  # an argument is a key, a code, a short phrase: not a document
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One argument: its type and, for text and digits, how long it may be."""

    name: str
    type: str = TEXT
    required: bool = True
    min_length: int = 0
    max_length: int = MAX_TEXT_CHARS


@dataclass(frozen=True, slots=True)
class ActionSignature:
    """The arguments of one action. ``strict``: an argument it does not declare is an error."""

    args: tuple[ArgSpec, ...]
    strict: bool = False

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args if a.required)

    def spec(self, name: str) -> ArgSpec | None:
        return next((a for a in self.args if a.name == name), None)


def signature_of(declared: Collection[str] | ActionSignature) -> ActionSignature:
    """A built-in action's required names as a (lenient, untyped) signature."""
    if isinstance(declared, ActionSignature):
        return declared
    return ActionSignature(tuple(ArgSpec(name) for name in declared))


def check_value(spec: ArgSpec, value: Any) -> str | None:
    """Why ``value`` is not a valid ``spec`` argument, or None when it is."""
    if value is None or value == "":
        return f"'{spec.name}' is empty" if spec.required else None
    if spec.type == BOOLEAN:
        return None if isinstance(value, bool) else f"'{spec.name}' must be true or false"
    if spec.type == NUMBER:
        if isinstance(value, bool):
            return f"'{spec.name}' must be a number"
        try:
            Decimal(str(value))
        except InvalidOperation:
            return f"'{spec.name}' must be a number, got {_shown(value)}"
        return None
    text = str(value)
    if spec.type == DIGITS and not _DIGITS.fullmatch(text):
        return f"'{spec.name}' must be digits only, got {_shown(value)}"
    if len(text) < spec.min_length:
        return f"'{spec.name}' must be at least {spec.min_length} characters"
    if len(text) > spec.max_length:
        return f"'{spec.name}' must be at most {spec.max_length} characters"
    return None


def check_args(signature: ActionSignature, args: Mapping[str, Any]) -> str | None:
    """The first reason ``args`` do not fit ``signature`` (missing, unknown, mistyped), or None."""
    for spec in signature.args:
        if spec.name not in args:
            if spec.required:
                return f"'{spec.name}' is missing"
            continue
        problem = check_value(spec, args[spec.name])
        if problem is not None:
            return problem
    if signature.strict:
        unknown = sorted(set(args) - {a.name for a in signature.args})
        if unknown:
            return f"'{unknown[0]}' is not an argument of this action"
    return None


def _shown(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 20 else text[:20] + "…")
