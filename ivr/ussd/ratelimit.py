"""A token bucket per subscriber number: bursts of a few requests, a steady rate beyond.

A person types a USSD answer every few seconds; a number sending many requests a second
is a stuck client, a replay or an attack, and each request may cost a CRM round trip.
The buckets live in this process (each gateway process limits on its own), bounded in
number: a full bucket is dropped, since a missing bucket behaves exactly like a full one.
"""

from __future__ import annotations

from collections.abc import Callable

from ivr.ussd.config import RateLimit

#: Buckets kept before the full ones are swept out.
MAX_BUCKETS = 100_000


class TokenBucketLimiter:
    """One token bucket per number: ``burst`` at once, ``per_minute`` sustained (the SMS side uses a sliding window)."""

    def __init__(self, policy: RateLimit, clock: Callable[[], float], *, max_buckets: int = MAX_BUCKETS) -> None:
        self.policy = policy
        self._clock = clock
        self._rate = policy.per_minute / 60.0  # tokens per second
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._max = max_buckets

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        if not self.policy.enabled:
            return True
        now = self._clock()
        capacity = float(self.policy.burst)
        tokens, at = self._buckets.get(key, (capacity, now))
        tokens = min(capacity, tokens + max(0.0, now - at) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self._max:
            self._sweep(now)
        return True

    def _sweep(self, now: float) -> None:
        capacity = float(self.policy.burst)
        full = [k for k, (tokens, at) in self._buckets.items() if tokens + (now - at) * self._rate >= capacity]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) > self._max:  # still too many: forget the oldest (they refill first anyway)
            for key, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[: len(self._buckets) - self._max]:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
