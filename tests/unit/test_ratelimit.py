"""The per-number sliding window."""

from __future__ import annotations

from ivr.ratelimit import SlidingWindowLimiter

from .conftest import FakeClock


def test_allows_up_to_the_count_in_the_window() -> None:
    limiter = SlidingWindowLimiter(3, 60, clock=FakeClock())
    assert [limiter.check("+1") for _ in range(4)][:3] == [0.0, 0.0, 0.0]


def test_refuses_beyond_the_count_with_the_wait() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, 60, clock=clock)
    limiter.check("+1")
    clock.advance(10)
    limiter.check("+1")
    assert limiter.check("+1") == 50.0


def test_window_slides() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, 60, clock=clock)
    limiter.check("+1")
    clock.advance(30)
    limiter.check("+1")
    clock.advance(31)  # the first message has left the window
    assert limiter.check("+1") == 0.0


def test_refused_messages_do_not_count() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 60, clock=clock)
    limiter.check("+1")
    for _ in range(10):
        clock.advance(5)
        limiter.check("+1")
    clock.advance(10.1)
    assert limiter.check("+1") == 0.0


def test_the_table_of_numbers_is_bounded() -> None:
    limiter = SlidingWindowLimiter(1, 60, clock=FakeClock(), max_numbers=100)
    for i in range(1000):
        limiter.check(f"+{i}")
    assert len(limiter) == 100
