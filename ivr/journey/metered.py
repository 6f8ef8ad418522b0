"""A journey store that keeps the live KPIs up to date as events are stored.

Every channel already appends its events to the journey store, so wrapping the store is
the one place where the counters can see every call, USSD session and SMS without each
driver calling a metrics API (and without one forgetting to).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ivr.journey.delegate import JourneyDelegate
from ivr.journey.feed import JourneyFeed
from ivr.journey.kpi import KpiAccumulator
from ivr.journey.ports import JourneyStore, KvPut, StampedEvent

log = logging.getLogger(__name__)


class MeteredJourney(JourneyDelegate):
    """A :class:`~ivr.journey.ports.JourneyStore` that counts what ``inner`` stored.

    Counting happens after ``inner.append`` returned: an append that raised (refused,
    database down) may not be stored, and a KPI must not count what the report over the
    store will not find. A failure while counting is logged, never raised: the events are
    stored, and a driver told otherwise would report a stored step as lost.
    """

    def __init__(self, inner: JourneyStore, acc: KpiAccumulator, feed: JourneyFeed | None = None) -> None:
        super().__init__(inner)
        self.acc = acc
        self.feed = feed  # the open agent pages: told of what was stored, after it was

    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        await self.inner.append(key, events)
        self._count(key, events)

    async def put_and_append(self, puts: Sequence[KvPut], key: str, events: Sequence[StampedEvent]) -> None:
        await self.inner.put_and_append(puts, key, events)
        self._count(key, events)

    def _count(self, key: str, events: Sequence[StampedEvent]) -> None:
        try:
            for event in events:
                self.acc.add(key, event)
        except Exception:  # noqa: BLE001 - metrics must never fail a stored append
            log.exception("could not count journey events for the live KPIs")
        if self.feed is not None and events:
            try:
                self.feed.publish(key, events)
            except Exception:  # noqa: BLE001 - nor may an open page
                log.exception("could not pass journey events to the open agent pages")
