"""What the journey store refuses to keep: PINs, passwords and masked input.

The journey is shown to every agent who takes the customer and kept for analytics, so a
secret that reaches it leaks to every screen pop. The engine already masks collected input
(``***``); this is the store's own guard, applied by every backend before anything is
written, so a channel or driver that forgets cannot store a secret. The rule:

1. **Secret names.** A field whose name contains a secret's word (pin, password, passwd,
   pwd, passcode, passphrase, secret, otp, cvv, cvc, masked), as a word of the name
   (``pin``, ``new_pin``, ``pinCode``, ``masked-value``; not ``spin`` or ``shipping``) is
   dropped, at any depth (action args are nested). A boolean under such a name is kept:
   it says *whether*, never *what* (``pin_ok: false`` is what the agent needs to see).
2. **Masked events.** An event flagged masked (``data["masked"] is True``) keeps only its
   structural fields (:data:`MASKED_EVENT_KEEPS`); every other field is dropped whatever its
   name, since it may carry what the caller typed.
3. **The drop is recorded.** The stored event gets ``data["redacted"]``: the sorted paths of
   the dropped fields (``["args.pin", "value"]``), never the values; and a warning is logged
   with the same paths. Nothing else about the event changes, so the journey still shows
   that the caller entered a PIN, and where.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from ivr.journey.ports import StampedEvent

log = logging.getLogger("ivr.journey")

REDACTED_FIELD = "redacted"
MASKED_FLAG = "masked"

SECRET_WORDS = frozenset(
    {"pin", "pins", "pincode", "password", "passwd", "pwd", "passcode", "passphrase", "secret", "otp", "cvv", "cvc",
     "cvv2", "masked"}
)
MASKED_EVENT_KEEPS = frozenset({"node", "var", "name", "kind", "count", "reason", "ok", "by", "confirm", MASKED_FLAG})

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD = re.compile(r"[a-z0-9]+")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether ``name`` (a data field name) names a secret, by its words.

    Cached: every append asks this for every field, and field names repeat endlessly."""
    words = _WORD.findall(_CAMEL.sub(r"\1_\2", name).lower())
    return any(word in SECRET_WORDS for word in words)


#: Values with nothing below them: an event whose data holds only these needs no walk.
_FLAT_TYPES = frozenset({str, int, float, bool, type(None)})


@functools.lru_cache(maxsize=4096)
def _names_may_drop(names: tuple[Any, ...]) -> bool:
    """Whether a flat event with these field names could lose a field: a secret's name or the masked flag.

    Cached by the names: an event type always has the same few, so this is one lookup."""
    return MASKED_FLAG in names or any(isinstance(name, str) and is_secret_name(name) for name in names)


def redact(event: StampedEvent) -> StampedEvent:
    """``event`` with secrets dropped and the drop recorded (the rule is in the module doc)."""
    data = event.data
    for value in data.values():
        if type(value) not in _FLAT_TYPES:
            break
    else:
        if not _names_may_drop(tuple(data)):
            return event  # the usual event: flat, no secret's name; nothing to drop, nothing to copy
    return _redact_walking(event)


def _redact_walking(event: StampedEvent) -> StampedEvent:
    """:func:`redact` for any event: walks the data (its fast path is for flat events only)."""
    data = event.data
    if data.get(MASKED_FLAG) is not True and not _has_secret(data):
        return event
    dropped: list[str] = []
    if data.get(MASKED_FLAG) is True:
        kept = {}
        for name, value in data.items():
            if name in MASKED_EVENT_KEEPS and not isinstance(value, (dict, list)):
                kept[name] = value
            else:
                dropped.append(name)
        data = kept
    clean = _clean_mapping(data, "", dropped)
    if not dropped:
        return event
    clean[REDACTED_FIELD] = sorted(dropped)
    log.warning("journey: dropped %s from a %s event of interaction %s", ", ".join(sorted(dropped)),
                event.type, event.interaction)
    return StampedEvent(event.at, event.channel, event.interaction, event.type, clean)


def _has_secret(value: Any) -> bool:
    """Whether :func:`_clean_mapping` would drop anything below ``value`` (a read-only scan)."""
    if isinstance(value, dict):
        for name, item in value.items():
            if isinstance(name, str) and is_secret_name(name) and not isinstance(item, bool):
                return True
            if isinstance(item, (dict, list, tuple)) and _has_secret(item):
                return True
        return False
    if isinstance(value, (list, tuple)):
        return any(isinstance(item, (dict, list, tuple)) and _has_secret(item) for item in value)
    return False


def _clean_mapping(data: dict[str, Any], prefix: str, dropped: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in data.items():
        path = f"{prefix}{name}"
        if isinstance(name, str) and is_secret_name(name) and not isinstance(value, bool):
            dropped.append(path)
            continue
        out[name] = _clean_value(value, path, dropped)
    return out


def _clean_value(value: Any, path: str, dropped: list[str]) -> Any:
    if isinstance(value, dict):
        return _clean_mapping(value, f"{path}.", dropped)
    if isinstance(value, (list, tuple)):
        return [_clean_value(item, f"{path}[{i}]", dropped) for i, item in enumerate(value)]
    return value


# -- free text (an agent's note) -----------------------------------------------------------
_CARD = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")
_SECRET_PHRASE = re.compile(
    r"\b(" + "|".join(sorted(SECRET_WORDS - {"masked"}, key=len, reverse=True)) + r")(s?)\b(\s*(?:is|was|=|:)?\s*)(\S+)",
    re.IGNORECASE)
CARD_MARK = "[card number]"
SECRET_MARK = "[redacted]"


def redact_text(text: str) -> tuple[str, list[str]]:
    """Free text (an agent's note) with card numbers and spelled-out secrets replaced.

    Returns the text and what was replaced ("card number", "pin"...), never the values:
    an agent who types "PIN 4821 did not work" must not put the PIN on every later screen.
    """
    found: list[str] = []

    def card(_m: re.Match[str]) -> str:
        found.append("card number")
        return CARD_MARK

    def secret(m: re.Match[str]) -> str:
        found.append(m.group(1).lower())
        return f"{m.group(1)}{m.group(2)}{m.group(3)}{SECRET_MARK}"

    clean = _SECRET_PHRASE.sub(secret, _CARD.sub(card, text))
    return clean, sorted(set(found))
