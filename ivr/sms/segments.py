"""How many SMS a text costs, and how to make a reply fit a budget of them.

The operator bills, and the phone shows, segments, not characters: 160 GSM-7 septets
in one SMS, or 153 per part once a text is split (each part carries a 7-byte
concatenation header). One character outside the GSM 03.38 alphabet (Cyrillic, "…",
an emoji) switches the whole text to UCS-2: 70 characters single, 67 per part. Extension
characters (``€ [ ] { } \\ ^ ~ |`` and form feed) cost two septets, an escape and the
character, and a part never ends between the two; a UTF-16 surrogate pair is never
split across parts either. This is what Kannel does when it splits our replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]

#: The GSM 03.38 default alphabet (the escape 0x1B is not a character of its own).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table: each costs an escape septet plus itself.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

#: Units (septets or UTF-16 code units) per SMS: (single message, each part of a split one).
LIMITS: dict[Encoding, tuple[int, int]] = {"gsm7": (160, 153), "ucs2": (70, 67)}

#: What a shortened reply ends with; "…" is not GSM-7 and would turn a GSM-7 text into UCS-2.
ELLIPSIS: dict[Encoding, str] = {"gsm7": "...", "ucs2": "…"}

# Trailing characters that read badly before an ellipsis ("Start, Smart,...").
_DANGLING = " \t\r\n,;:-–—(\"'«"


@dataclass(frozen=True, slots=True)
class Segments:
    """The cost of one text: its encoding, its length in that encoding's units, and SMS parts."""

    encoding: Encoding
    units: int
    count: int

    @property
    def coding(self) -> int:
        """Kannel's ``coding`` value for this text: 0 = GSM-7, 2 = UCS-2."""
        return 0 if self.encoding == "gsm7" else 2


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the default alphabet or its extension, else UCS-2."""
    return "gsm7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else "ucs2"


def _unit_sizes(text: str, encoding: Encoding) -> list[int]:
    if encoding == "gsm7":
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def measure(text: str, encoding: Encoding | None = None) -> Segments:
    """The segments ``text`` takes (an empty text still takes one SMS).

    ``encoding`` forces the coding (a sender that always uses UCS-2); by default it is
    the cheapest one that can carry the text.
    """
    enc = encoding_of(text) if encoding is None else encoding
    sizes = _unit_sizes(text, enc)
    total = sum(sizes)
    single, part = LIMITS[enc]
    if total <= single:
        return Segments(enc, total, 1)
    count, fill = 1, 0
    for size in sizes:  # greedy, as the splitter does: an escape pair or surrogate pair stays whole
        if fill + size > part:
            count, fill = count + 1, 0
        fill += size
    return Segments(enc, total, count)


def fits(text: str, max_segments: int) -> bool:
    return measure(text).count <= max_segments


def shorten(text: str, max_segments: int) -> str:
    """``text`` if it fits in ``max_segments`` SMS, else its longest run of whole words plus an ellipsis.

    Never cuts inside a word: words are separated by whitespace, and the cut drops the
    dangling punctuation before it. The ellipsis matches the text's encoding, so shortening
    never turns a GSM-7 reply into a UCS-2 one (which would cost more segments). A text
    whose first word alone is over the budget comes back as the ellipsis only: a reply
    template that can produce that is a configuration mistake, and a half word would
    mislead the customer more than an obviously cut reply.
    """
    if max_segments < 1:
        raise ValueError(f"max_segments must be at least 1, got {max_segments}")
    if fits(text, max_segments):
        return text
    ellipsis = ELLIPSIS[encoding_of(text)]
    # Candidate cuts: just before each whitespace run, i.e. after each whole word.
    cuts = [i for i in range(1, len(text)) if text[i].isspace() and not text[i - 1].isspace()]
    best = ellipsis
    lo, hi = 0, len(cuts) - 1
    while lo <= hi:  # a longer prefix never costs fewer segments, so the fitting cuts are a prefix of `cuts`
        mid = (lo + hi) // 2
        candidate = text[:cuts[mid]].rstrip(_DANGLING) + ellipsis
        if candidate != ellipsis and fits(candidate, max_segments):
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best
