"""Where a menu file is wrong, as a value a person can read and a test can compare.

Every load-time check reports a :class:`Problem`; nothing in the loader raises
on bad input. ``str(problem)`` is the compiler-style line an editor can jump to.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from ivr.errors import ConfigError


@dataclass(frozen=True, slots=True, order=True)
class Loc:
    """A 1-based position in a source file."""

    path: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong with a menu tree, at the place a person must edit."""

    path: str
    line: int
    col: int
    message: str

    @classmethod
    def at(cls, loc: Loc, message: str) -> Problem:
        return cls(loc.path, loc.line, loc.col, message)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A "; did you mean 'x'?" suffix, or "" when nothing is close enough to help."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def type_name(value: object) -> str:
    """The YAML word for a value's type, for messages about wrong types."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


class ProblemsFound(ConfigError):
    """A file an admin edits has problems, each with its file:line (``ivr validate`` lists them)."""

    def __init__(self, path: object, problems: list[Problem], *, hint: str) -> None:
        super().__init__(f"{path} has {len(problems)} problem(s):\n" + "\n".join(str(p) for p in problems),
                         hint=hint)
        self.problems = problems
