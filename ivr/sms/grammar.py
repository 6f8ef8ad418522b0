"""Which command a text is: keyword skeletons, longest keyword first, exact match only.

A whole message must be a keyword (``BAL``) or, for a command that takes an argument,
a keyword followed by the argument (``TARIFF SMART``). Extra words are not ignored:
"ROAM ON NOT" must not switch roaming on, so anything that is not exactly a command
gets the fallback (the help text). The longest keyword wins, so ``ROAM ON`` is found
even if ``ROAM`` were a keyword of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ivr.sms import keyword_fold as skel
from ivr.sms.config import Command


@dataclass(frozen=True)
class Match:
    """What a text asks for.

    ``keyword_language`` is the language of the keyword used (None for the fallback);
    ``argument`` is the canonical choice (``"Smart"``); ``rejected`` is what the customer
    wrote where an argument was expected but matched no choice.
    """

    command: Command
    keyword_language: str | None = None
    argument: str | None = None
    rejected: str | None = None

    @property
    def recognised(self) -> bool:
        return self.keyword_language is not None


class Grammar:
    def __init__(self, commands: Iterable[Command], fallback: Command) -> None:
        self.fallback = fallback
        self._plain: dict[str, tuple[Command, str]] = {}
        self._with_argument: dict[str, tuple[Command, str]] = {}
        self._longest = 1
        for command in commands:
            table = self._plain if command.argument is None else self._with_argument
            for kw in command.keywords:
                table.setdefault(kw.skeleton, (command, kw.language))
                self._longest = max(self._longest, kw.skeleton.count(" ") + 1)

    @classmethod
    def of(cls, commands: Mapping[str, Command], fallback: str) -> Grammar:
        return cls(commands.values(), commands[fallback])

    def match(self, text: str) -> Match:
        words = skel.words(text)
        if not words:
            return Match(self.fallback)
        for size in range(min(self._longest, len(words)), 0, -1):
            head = " ".join(w.skeleton for w in words[:size])
            rest = words[size:]
            if not rest:
                found = self._plain.get(head)
                if found is not None:
                    return Match(found[0], found[1])
                continue
            found = self._with_argument.get(head)
            if found is None:
                continue
            command, language = found
            assert command.argument is not None
            if command.argument.free:
                return Match(command, language, argument=" ".join(w.raw for w in rest))
            value = command.argument.choices.get(" ".join(w.skeleton for w in rest))
            if value is not None:
                return Match(command, language, argument=value)
            return Match(command, language, rejected=" ".join(w.raw for w in rest))
        return Match(self.fallback)
