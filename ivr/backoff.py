"""How long to wait before the next reconnect: exponential, capped, with jitter, reset on success.

Every long-lived link the controller keeps (AMI today; the ARI events socket, the journey
database) reconnects the same way, so a restarted Asterisk is not hammered by every
controller at the same instant and a link that was down for an hour is retried within
``maximum_s``, not after an ever-growing sleep.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

#: The defaults for links to Asterisk and the database: first retry within half a second,
#: then at most every 30 s.
DEFAULT_INITIAL_S = 0.5
DEFAULT_MAXIMUM_S = 30.0


@dataclass
class Backoff:
    """Delays ``initial_s``, ``initial_s * factor``, ... up to ``maximum_s``, each with "full jitter"
    of ``jitter`` (0.2: the delay is drawn from 80-100% of the nominal one)."""

    initial_s: float = DEFAULT_INITIAL_S
    maximum_s: float = DEFAULT_MAXIMUM_S
    factor: float = 2.0
    jitter: float = 0.2
    random: Callable[[], float] = field(default=random.random, repr=False)
    attempts: int = 0

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.maximum_s) or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"bad backoff: initial {self.initial_s} s, maximum {self.maximum_s} s, "
                             f"factor {self.factor}, jitter {self.jitter}")

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one failed attempt."""
        nominal = min(self.maximum_s, self.initial_s * self.factor ** self.attempts)
        self.attempts += 1
        return nominal * (1 - self.jitter * self.random())

    def reset(self) -> None:
        """The link is up again: the next failure starts from ``initial_s``."""
        self.attempts = 0
