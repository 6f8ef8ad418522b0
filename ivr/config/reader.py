"""One reader for every YAML config file: typed reads that turn each mistake into a located problem.

The menus, routing rules, SMS and USSD settings and the CRM's HTTP mapping are all YAML an
admin edits, and all of them must answer a mistake the same way: ``path:line:col: what is
wrong, and what was meant``, every problem at once, never a traceback. The located YAML
comes from :mod:`ivr.config.source`; this module reads values out of it.

Flat sections (ports, limits, timeouts) are read declaratively: the section's dataclass
holds the defaults, a table of :class:`Whole`, :class:`Number` and :class:`Text` rules holds
the bounds, and :meth:`ConfigReader.record` does the rest. Sections with structure of their
own (commands, service codes, rules) subclass the reader and use the same typed reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ivr.config.problems import Loc, Problem, did_you_mean, type_name
from ivr.config.source import YList, YMap

T = TypeVar("T")


@dataclass(frozen=True)
class Whole:
    """A whole number from ``low`` to ``high``."""

    low: int
    high: int


@dataclass(frozen=True)
class Number:
    """A number (whole or not) from ``low`` to ``high``; read as float."""

    low: float
    high: float


@dataclass(frozen=True)
class Text:
    """Quoted text (a bare YAML number is refused: ``611`` is not ``"611"``)."""

    allow_empty: bool = False


FieldRule = Whole | Number | Text


class ConfigReader:
    """Typed reads from located YAML; every mistake becomes a :class:`Problem` at the value's place.

    A read that fails records the problem and returns the default, so one pass reports
    every problem in a file. ``env`` supplies secrets that must not live in the file.
    """

    def __init__(self, problems: list[Problem], env: Mapping[str, str] | None = None) -> None:
        self.problems = problems
        self.env: Mapping[str, str] = env or {}

    def problem(self, loc: Loc, message: str) -> None:
        self.problems.append(Problem.at(loc, message))

    # -- structure ---------------------------------------------------------------------------
    def fields(self, m: YMap, allowed: Collection[str], required: Collection[str], what: str) -> None:
        """Unknown keys (with a "did you mean") and missing required ones."""
        for key in m:
            if key not in allowed:
                raw = m.raw_keys.get(key, str(key))
                self.problem(m.key_loc(key), f"unknown field '{raw}' in {what}{did_you_mean(raw, allowed)}")
        for key in required:
            if key not in m:
                self.problem(m.loc, f"missing required field '{key}' in {what}")

    def section(self, m: YMap, key: str, what: str, *, required: bool = False,
                allowed: Collection[str] | None = None) -> YMap | None:
        """The mapping under ``key``; None when absent (a problem if ``required``) or not a mapping."""
        if key not in m or (m[key] is None and not required):
            if required:
                self.problem(m.loc, f"missing required field '{key}' in {what}")
            return None
        value = m[key]
        if not isinstance(value, YMap):
            self.problem(m.value_loc(key), f"'{key}' must be a mapping, got {type_name(value)}")
            return None
        if allowed is not None:
            self.fields(value, allowed, (), f"'{key}'")
        return value

    # -- scalars -----------------------------------------------------------------------------
    def text(self, m: YMap, key: str, default: str | None = None, *, allow_empty: bool = False) -> str | None:
        """Text under ``key``; ``default`` when absent (a problem if there is no default)."""
        if key not in m:
            if default is None:
                self.problem(m.loc, f"missing '{key}'")
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.problem(m.value_loc(key), f"'{key}' must be text, got {type_name(value)}")
            return default
        if not isinstance(value, str):
            self.problem(m.value_loc(key), f"'{key}' must be quoted text (YAML read {value!r} as a number)")
            return default
        if not value.strip() and not allow_empty:
            self.problem(m.value_loc(key), f"'{key}' must not be empty")
            return default
        return value

    def whole(self, m: YMap, key: str, default: int, low: int, high: int) -> int:
        if key not in m:
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(m.value_loc(key), f"'{key}' must be a whole number, got {type_name(value)}")
            return default
        if not low <= value <= high:
            self.problem(m.value_loc(key), f"'{key}' must be from {low} to {high}, got {value}")
            return default
        return value

    def number(self, m: YMap, key: str, default: float, low: float, high: float) -> float:
        if key not in m:
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(m.value_loc(key), f"'{key}' must be a number, got {type_name(value)}")
            return default
        if not low <= value <= high:
            self.problem(m.value_loc(key), f"'{key}' must be from {low:g} to {high:g}, got {value}")
            return default
        return float(value)

    def text_list(self, value: Any, loc: Loc, what: str) -> list[tuple[str, Loc]]:
        """Each non-empty text of a list, with where it stands."""
        if not isinstance(value, YList):
            self.problem(loc, f"{what} must be a list, got {type_name(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (str, int)) or (isinstance(item, str) and not item.strip()):
                self.problem(value.item_loc(i), f"{what} must hold text, got {type_name(item)}")
                continue
            out.append((str(item), value.item_loc(i)))
        return out

    def secret(self, m: YMap | None, key: str, env_name: str, default: str = "") -> str:
        """The environment's ``env_name`` wins over the file's ``key``: secrets belong in the environment."""
        from_file = default if m is None else self.text(m, key, default, allow_empty=True) or default
        return self.env.get(env_name) or from_file

    # -- declarative sections ----------------------------------------------------------------
    def record(self, section: YMap | None, defaults: T, rules: Mapping[str, FieldRule], what: str, *,
               also: Collection[str] = ()) -> T:
        """``defaults`` (a dataclass value) with the fields ``rules`` names read from ``section``.

        Unknown keys are problems, except ``also`` (keys the caller reads itself, such as
        secrets); an absent section is the defaults.
        """
        if section is None:
            return defaults
        self.fields(section, {*rules, *also}, (), what)
        values: dict[str, Any] = {}
        for name, rule in rules.items():
            current = getattr(defaults, name)
            if isinstance(rule, Whole):
                values[name] = self.whole(section, name, current, rule.low, rule.high)
            elif isinstance(rule, Number):
                values[name] = self.number(section, name, current, rule.low, rule.high)
            else:
                values[name] = self.text(section, name, current, allow_empty=rule.allow_empty)
        return dataclasses.replace(defaults, **values)  # type: ignore[type-var]
