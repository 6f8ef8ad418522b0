"""Matching what a caller said against a menu's keywords.

Recognisers return text with varying case, spacing and punctuation, so both the
keywords (at load time) and the utterance (at call time) are normalised the same
way. A keyword matches when it is the whole utterance or appears in it as whole
words ("my balance please" matches "balance"); when two options match, the input
is ambiguous and counts as a nomatch rather than a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_NON_WORD = re.compile(r"[^\w*#]+")

#: Spoken yes/no for `confirm:` prompts, by language (keys 1 and 2 always work).
CONFIRM_WORDS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (("yes", "yeah", "yep", "confirm", "sure"), ("no", "nope", "cancel")),
    "ru": (("да", "подтверждаю", "конечно", "ага"), ("нет", "отмена", "не надо")),
}


def normalise(text: str) -> str:
    """Case-folded words separated by single spaces; punctuation dropped."""
    return " ".join(_NON_WORD.sub(" ", text.casefold()).split())


def match(utterance: str, candidates: Iterable[tuple[str, int]]) -> int | None:
    """The one candidate id whose keyword matches the normalised utterance, else None.

    ``candidates`` are (normalised keyword, id) pairs; exact matches win over
    matches inside a longer utterance.
    """
    if not utterance:
        return None
    padded = f" {utterance} "
    exact: set[int] = set()
    inside: set[int] = set()
    for keyword, ident in candidates:
        if keyword == utterance:
            exact.add(ident)
        elif keyword and f" {keyword} " in padded:
            inside.add(ident)
    if len(exact) == 1:
        return exact.pop()
    if not exact and len(inside) == 1:
        return inside.pop()
    return None


def confirm_answer(utterance: str, language: str) -> str | None:
    """'1' for a spoken yes, '2' for a spoken no, None otherwise."""
    yes, no = CONFIRM_WORDS.get(language, CONFIRM_WORDS["en"])
    pairs = [(normalise(w), 1) for w in yes] + [(normalise(w), 2) for w in no]
    found = match(utterance, pairs)
    return None if found is None else str(found)
