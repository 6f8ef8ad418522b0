"""An in-process journey store: for tests, and for a controller run without a database."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence

from ivr.journey.ports import StampedEvent

MAX_EVENTS_PER_KEY = 1000


class MemoryJourney:
    def __init__(self, max_events_per_key: int = MAX_EVENTS_PER_KEY) -> None:
        self._events: dict[str, deque[StampedEvent]] = defaultdict(lambda: deque(maxlen=max_events_per_key))

    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        self._events[key].extend(events)

    def events(self, key: str) -> list[StampedEvent]:
        return list(self._events.get(key, ()))
