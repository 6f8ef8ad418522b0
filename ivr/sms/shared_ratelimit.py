"""The SMS sliding window shared by every controller, in the journey store's kv table.

Kannel posts a subscriber's texts to whichever controller its load balancer picks; windows
kept in each process would let N controllers each allow the configured count. Here a
number's window is one kv entry (the times of its counted messages) changed by
compare-and-set (:func:`ivr.journey.cas.change_kv`), and it expires a window after its last
message, so idle numbers cost nothing.

The store being away must not silence subscribers: then this process's own window
(:class:`~ivr.ratelimit.SlidingWindowLimiter`) decides, as it did before windows were shared.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from ivr.journey.cas import change_kv
from ivr.journey.errors import JourneyError
from ivr.journey.ports import JourneyStore
from ivr.ratelimit import SlidingWindowLimiter

log = logging.getLogger(__name__)

NAMESPACE = "sms_rate"
CONTENDED_WAIT_S = 1.0  # a message that keeps losing the race is refused for this long (Kannel retries)


class SmsRateLimiter(Protocol):
    async def check(self, number: str) -> float:
        """Count one message from ``number``: 0.0 if allowed, else seconds until the next is."""
        ...


class InProcessWindow:
    """This process's own windows, behind the same awaitable ``check`` as the shared ones."""

    def __init__(self, windows: SlidingWindowLimiter) -> None:
        self.windows = windows

    async def check(self, number: str) -> float:
        return self.windows.check(number)


class SharedSlidingWindow:
    """At most ``count`` messages per number in any ``window_s``, counted across every process."""

    def __init__(self, count: int, window_s: float, store: JourneyStore, clock: Callable[[], float]) -> None:
        self._local = SlidingWindowLimiter(count, window_s, clock=clock)  # checks count and window_s too
        self.count = count
        self.window_s = window_s
        self.store = store
        self._clock = clock

    async def check(self, number: str) -> float:
        try:
            done, wait = await change_kv(self.store, NAMESPACE, number, self._count_one, self.window_s + 1.0)
        except JourneyError as exc:
            log.warning("shared SMS rate limit unavailable (%s): this process's own window decides", exc)
            return self._local.check(number)
        return wait if done and wait is not None else CONTENDED_WAIT_S

    def _count_one(self, stored: dict[str, Any] | None) -> tuple[float, dict[str, Any] | None]:
        """(seconds to wait, window to write): a refused message is not counted, as in the local window."""
        now = self._clock()
        floor = now - self.window_s
        times = sorted(t for t in _times(stored) if floor < t <= now + self.window_s)
        if len(times) >= self.count:
            return max(times[-self.count] - floor, 0.001), None
        return 0.0, {"times": [*times, now]}


def _times(stored: dict[str, Any] | None) -> list[float]:
    """The counted messages' times; none, or an unreadable entry, is an empty window."""
    raw = (stored or {}).get("times")
    if not isinstance(raw, list):
        return []
    return [float(t) for t in raw if isinstance(t, (int, float)) and not isinstance(t, bool)]
