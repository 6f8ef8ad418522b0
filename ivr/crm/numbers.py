"""Caller ID to E.164, the one key the CRM, the cache and the journey store agree on.

``8 999 123-45-67``, ``+7 (999) 1234567`` and ``79991234567`` are the same customer;
without one normal form each would be a different cache entry and a different CRM
miss. Caller ID comes from the network and is hostile input: anything that is not
plainly a phone number (withheld markers, names, control characters, huge strings)
is treated as "no caller ID" rather than guessed at.
"""

from __future__ import annotations

import functools
import re

import phonenumbers

#: Longer than any dialable number with punctuation; longer input is not a caller ID.
MAX_RAW_LENGTH = 40
#: Digits (any script: phonenumbers folds full-width digits), spaces and dialling punctuation.
_PLAUSIBLE = re.compile(r"^[\d\s+()\-./]+$")
#: Numbers remembered as parsed (at most about 10 MB). Every call, USSD request and SMS
#: normalises its number, often more than once, and phonenumbers' parse is the dearest
#: step of a USSD request; subscribers repeat, so a bounded cache answers most of them.
CACHE_ENTRIES = 65_536


@functools.lru_cache(maxsize=CACHE_ENTRIES)
def normalise(raw: str | None, default_region: str = "RU") -> str | None:
    """The E.164 form of ``raw`` (``+79991234567``), or None when it is not a usable number.

    Letters are refused outright: they mean a withheld marker (``anonymous``,
    ``Restricted``) or a vanity spelling that a caller ID never carries. Numbers only
    need to be *possible* (right length for the country), not *valid* by the library's
    range tables: stale metadata must not turn a known customer into an unknown one.
    """
    if not raw or len(raw) > MAX_RAW_LENGTH or not _PLAUSIBLE.fullmatch(raw):
        return None
    if not any(c.isdigit() for c in raw):
        return None
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
