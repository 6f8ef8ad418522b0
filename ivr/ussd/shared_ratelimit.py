"""The USSD token bucket shared by every gateway process, in the journey store's kv table.

Behind a load balancer with no sticky sessions, a subscriber's requests reach any gateway
process; buckets in each process would let N processes each allow the configured rate.
Here a number's bucket is one kv entry (tokens left, when) changed by compare-and-set:
read it, refill it for the time that passed, take a token, write it back only if nobody
wrote it meanwhile (else read again). A bucket that has refilled completely expires, so
idle numbers cost nothing.

The store being away must not lock subscribers out: then the process's own bucket
(:class:`TokenBucketLimiter`) decides, as it did before buckets were shared.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from ivr.journey.errors import JourneyError, WriteConflict
from ivr.journey.ports import ABSENT, JourneyStore, KvPut
from ivr.ussd.config import RateLimit
from ivr.ussd.ratelimit import TokenBucketLimiter

log = logging.getLogger(__name__)

NAMESPACE = "ussd_rate"
ATTEMPTS = 3  # compare-and-set rounds before a request that keeps losing the race is refused


class SharedTokenBucket:
    """``allow(number)`` against one bucket per number that every gateway process shares."""

    def __init__(self, policy: RateLimit, store: JourneyStore, clock: Callable[[], float]) -> None:
        self.policy = policy
        self.store = store
        self._clock = clock
        self._rate = policy.per_minute / 60.0
        self._local = TokenBucketLimiter(policy, clock)
        # Past this, an untouched bucket is full again: the same as no entry at all.
        self._ttl_s = policy.burst / self._rate + 1.0 if self._rate > 0 else 86_400.0

    async def allow(self, number: str) -> bool:
        if not self.policy.enabled:
            return True
        try:
            for _ in range(ATTEMPTS):
                if (taken := await self._take(number)) is not None:
                    return taken
            return False
        except JourneyError as exc:
            log.warning("shared USSD rate limit unavailable (%s): this process's own bucket decides", exc)
            return self._local.allow(number)

    async def _take(self, number: str) -> bool | None:
        """True or False, or None when another process wrote the bucket first."""
        now = self._clock()
        text = await self.store.kv_get_text(NAMESPACE, number)
        capacity = float(self.policy.burst)
        tokens, at = (capacity, now) if text is None else _bucket(text, capacity, now)
        tokens = min(capacity, tokens + max(0.0, now - at) * self._rate)
        if tokens < 1.0:
            return False
        put = KvPut(NAMESPACE, number, {"tokens": tokens - 1.0, "at": now}, self._ttl_s,
                    expect=text if text is not None else ABSENT)
        try:
            await self.store.put_and_append([put], number, [])
        except WriteConflict:
            return None
        return True


def _bucket(text: str, capacity: float, now: float) -> tuple[float, float]:
    """(tokens, at) from a stored bucket; an unreadable one counts as full (never locks anyone out)."""
    try:
        value = json.loads(text)
        return float(value["tokens"]), float(value["at"])
    except (ValueError, KeyError, TypeError):
        return capacity, now
