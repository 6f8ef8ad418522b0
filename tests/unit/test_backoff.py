"""Reconnect delays: exponential from the first retry, capped, jittered, and reset once the link is up."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.backoff import Backoff


def test_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(initial_s=0.5, maximum_s=4.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_link_that_came_back_starts_again_from_the_first_delay() -> None:
    backoff = Backoff(initial_s=0.5, maximum_s=4.0, jitter=0.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize(("draw", "delay"), [(0.0, 2.0), (1.0, 1.6), (0.5, 1.8)])
def test_jitter_shortens_a_delay_by_at_most_its_share(draw: float, delay: float) -> None:
    backoff = Backoff(initial_s=2.0, maximum_s=30.0, jitter=0.2, random=lambda: draw)
    assert backoff.next_delay() == pytest.approx(delay)


@pytest.mark.parametrize("bad", [{"initial_s": 0}, {"initial_s": 5, "maximum_s": 1}, {"factor": 0.5},
                                 {"jitter": 1.0}])
def test_a_nonsense_backoff_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="bad backoff"):
        Backoff(**bad)
