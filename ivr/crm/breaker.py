"""A circuit breaker: stop asking a CRM that keeps failing, and try again later.

When the CRM is down every lookup would otherwise spend its whole time budget
waiting, on every call, and pile load on a system that is trying to recover. After
``failure_threshold`` consecutive failures the breaker opens: calls fail at once
(the caller gets the generic menu without the wait). After ``reset_after_s`` it goes
half-open and lets exactly one trial call through; its success closes the breaker,
its failure opens it for another period.

Not thread-safe by design: it lives on one event loop, like the calls that use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum

DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_RESET_AFTER_S = 30.0


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Ask :meth:`allow` before a call, then report it with exactly one of
    :meth:`record_success`, :meth:`record_failure` or :meth:`release`."""

    def __init__(self, *, failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
                 reset_after_s: float = DEFAULT_RESET_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, not {failure_threshold}")
        if reset_after_s <= 0:
            raise ValueError(f"reset_after_s must be positive, not {reset_after_s}")
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._trial_running or self._clock() - self._opened_at >= self.reset_after_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_in_s(self) -> float:
        """Seconds until the next trial call is allowed (0 when calls are allowed now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.reset_after_s - self._clock())

    def allow(self) -> bool:
        """May a call go to the CRM now? In half-open, only the first asker gets a yes."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._trial_running or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
        self._trial_running = False

    def release(self) -> None:
        """The allowed call ended without a verdict (cancelled: the caller hung up).

        Frees the half-open trial slot, so the next call can be the trial instead of
        the breaker waiting forever for an answer that will not come.
        """
        self._trial_running = False
