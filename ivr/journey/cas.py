"""Read, change and write back one kv entry that several processes share, by compare-and-set.

Several controllers behind a load balancer keep counters in the journey store's kv table
(the USSD token bucket, the SMS sliding window). Each change reads the entry, computes the
new value, and writes it only if nobody wrote the entry meanwhile
(:attr:`~ivr.journey.ports.KvPut.expect`); a lost race reads again. The store's own errors
(:class:`~ivr.journey.errors.JourneyError`) reach the caller, who decides what an
unreachable store means for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from ivr.journey.errors import WriteConflict
from ivr.journey.ports import ABSENT, JourneyStore, KvPut

T = TypeVar("T")
ATTEMPTS = 3  # rounds before a change that keeps losing the race gives up

#: ``change(stored value or None) -> (result, value to write or None to write nothing)``;
#: an entry that is not a JSON object reads as None (a damaged entry never locks anyone out).
Change = Callable[[dict[str, Any] | None], tuple[T, dict[str, Any] | None]]


async def change_kv(store: JourneyStore, namespace: str, key: str, change: Change[T], ttl_s: float, *,
                    attempts: int = ATTEMPTS) -> tuple[bool, T | None]:
    """``(True, result)`` once a change is written (or needed no write); ``(False, None)`` after
    ``attempts`` lost races."""
    for _ in range(attempts):
        text = await store.kv_get_text(namespace, key)
        result, value = change(_decoded(text))
        if value is None:
            return True, result
        put = KvPut(namespace, key, value, ttl_s, expect=text if text is not None else ABSENT)
        try:
            await store.put_and_append([put], key, [])
        except WriteConflict:
            continue
        return True, result
    return False, None


def _decoded(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
