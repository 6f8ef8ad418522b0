"""Per-sender rate limit: at most N requests in any window of W seconds, kept in process.

Used for SMS numbers and for the context API's clients. SMS loops are real: an auto-responder on the other side answers every reply, and a
flood from one number costs a CRM lookup, a journey write and a paid SMS each. A
sliding window per number stops that without touching anybody else. The table is
bounded: numbers idle for a whole window are dropped first, so a spoofed-sender flood
cannot grow memory without limit. Kept in process; several controllers on PostgreSQL share
one window per number instead (:mod:`ivr.sms.shared_ratelimit`), and fall back to this one
while the store is away.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable

#: Numbers tracked at once; beyond this the least recently seen are forgotten.
DEFAULT_MAX_NUMBERS = 100_000


class SlidingWindowLimiter:
    """At most ``count`` messages per number in any ``window_s`` (USSD uses a token bucket instead)."""

    def __init__(self, count: int, window_s: float, *, clock: Callable[[], float],
                 max_numbers: int = DEFAULT_MAX_NUMBERS) -> None:
        if count < 1 or window_s <= 0:
            raise ValueError("the rate limit needs count >= 1 and window_s > 0")
        self.count = count
        self.window_s = window_s
        self._clock = clock
        self._max = max_numbers
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, number: str) -> float:
        """Count one message from ``number``: 0.0 if allowed, else seconds until the next is.

        A refused message is not counted, so a sender that backs off is served again
        exactly when the window allows.
        """
        now = self._clock()
        times = self._times(number)
        wait = self._wait(times, now)
        if wait:
            return wait
        times.append(now)
        return 0.0

    def wait(self, number: str) -> float:
        """Seconds until ``number`` may send again (0.0: now), counting nothing."""
        times = self._seen.get(number)
        return 0.0 if times is None else self._wait(times, self._clock())

    def record(self, number: str) -> None:
        """Count one from ``number`` whatever the window says; the newest ``count`` are kept."""
        times = self._times(number)
        times.append(self._clock())
        while len(times) > self.count:
            times.popleft()

    def _times(self, number: str) -> deque[float]:
        times = self._seen.get(number)
        if times is None:
            times = self._seen[number] = deque()
            self._trim()
        else:
            self._seen.move_to_end(number)
        return times

    def _wait(self, times: deque[float], now: float) -> float:
        floor = now - self.window_s
        while times and times[0] <= floor:
            times.popleft()
        return max(times[0] - floor, 0.001) if len(times) >= self.count else 0.0

    def __len__(self) -> int:
        return len(self._seen)

    def _trim(self) -> None:
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
