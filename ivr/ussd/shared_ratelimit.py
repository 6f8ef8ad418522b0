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

import logging
from collections.abc import Callable
from typing import Any

from ivr.journey.cas import change_kv
from ivr.journey.errors import JourneyError
from ivr.journey.ports import JourneyStore
from ivr.ussd.config import RateLimit
from ivr.ussd.ratelimit import TokenBucketLimiter

log = logging.getLogger(__name__)

NAMESPACE = "ussd_rate"


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
            done, taken = await change_kv(self.store, NAMESPACE, number, self._take, self._ttl_s)
        except JourneyError as exc:
            log.warning("shared USSD rate limit unavailable (%s): this process's own bucket decides", exc)
            return self._local.allow(number)
        return done and bool(taken)  # a request that keeps losing the race is refused

    def _take(self, stored: dict[str, Any] | None) -> tuple[bool, dict[str, Any] | None]:
        """Refill the bucket for the time that passed and take a token: (taken, bucket to write)."""
        now = self._clock()
        capacity = float(self.policy.burst)
        tokens, at = _bucket(stored, capacity, now)
        tokens = min(capacity, tokens + max(0.0, now - at) * self._rate)
        if tokens < 1.0:
            return False, None
        return True, {"tokens": tokens - 1.0, "at": now}


def _bucket(stored: dict[str, Any] | None, capacity: float, now: float) -> tuple[float, float]:
    """(tokens, at) from a stored bucket; none, or an unreadable one, counts as full."""
    try:
        return (capacity, now) if stored is None else (float(stored["tokens"]), float(stored["at"]))
    except (ValueError, KeyError, TypeError):
        return capacity, now
