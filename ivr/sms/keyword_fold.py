"""One spelling per keyword: case, spacing and look-alike letters folded away.

Phones mix keyboards. A subscriber typing "BAL" on a Russian layout sends Cyrillic
"ВАL" that looks identical on the screen, and "бал", " Bal. " and full-width "ＢＡＬ"
are the same request too. Every keyword and every incoming text is reduced to a
*skeleton*: NFKC (full-width and compatibility forms), upper case, Cyrillic and Greek
capitals that look like Latin ones replaced by the Latin letter, punctuation trimmed
from the ends of each word, words joined by one space. Two texts match when their
skeletons are equal. Letters with no Latin twin (Б, Л, Ж...) stay as they are, so
Russian keywords keep working; the loader refuses two commands whose keywords fold to
the same skeleton.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

_LOOKALIKE_PAIRS = {
    # Cyrillic capitals (lower case ones reach here upper-cased)
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ү": "Y", "Ԛ": "Q", "Ԝ": "W",
    # Greek capitals
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}
_LOOKALIKES = str.maketrans(_LOOKALIKE_PAIRS)


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a text: as the customer wrote it, and its skeleton."""

    raw: str
    skeleton: str


def _fold_word(word: str) -> str:
    folded = word.upper().translate(_LOOKALIKES)
    start, end = 0, len(folded)
    while start < end and unicodedata.category(folded[start])[0] in "PS":
        start += 1
    while end > start and unicodedata.category(folded[end - 1])[0] in "PS":
        end -= 1
    return folded[start:end]


def words(text: str) -> tuple[Word, ...]:
    """The words of ``text`` with their skeletons; words that are only punctuation are dropped."""
    out = []
    for raw in unicodedata.normalize("NFKC", text).split():
        folded = _fold_word(raw)
        if folded:
            out.append(Word(raw, folded))
    return tuple(out)


def skeleton(text: str) -> str:
    """The folded form of ``text``: ``skeleton(" вАл! ") == skeleton("BAL") == "BAL"``."""
    return " ".join(w.skeleton for w in words(text))
