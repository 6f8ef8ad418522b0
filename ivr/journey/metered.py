"""A journey store that keeps the live KPIs up to date as events are stored.

Every channel already appends its events to the journey store, so wrapping the store is
the one place where the counters can see every call, USSD session and SMS without each
driver calling a metrics API (and without one forgetting to).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ivr.journey.feed import JourneyFeed
from ivr.journey.kpi import KpiAccumulator
from ivr.journey.ports import JourneyStore, KvPut, StampedEvent

log = logging.getLogger(__name__)


class MeteredJourney:
    """A :class:`~ivr.journey.ports.JourneyStore` that counts what ``inner`` stored.

    Counting happens after ``inner.append`` returned: an append that raised (refused,
    database down) may not be stored, and a KPI must not count what the report over the
    store will not find. A failure while counting is logged, never raised: the events are
    stored, and a driver told otherwise would report a stored step as lost.
    """

    def __init__(self, inner: JourneyStore, acc: KpiAccumulator, feed: JourneyFeed | None = None) -> None:
        self.inner = inner
        self.acc = acc
        self.feed = feed  # the open agent pages: told of what was stored, after it was

    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        await self.inner.append(key, events)
        self._count(key, events)

    async def put_and_append(self, puts: Sequence[KvPut], key: str, events: Sequence[StampedEvent]) -> None:
        await self.inner.put_and_append(puts, key, events)
        self._count(key, events)

    async def recent(self, key: str, *, limit: int = 100, since: float | None = None) -> list[StampedEvent]:
        return await self.inner.recent(key, limit=limit, since=since)

    async def interaction_events(self, interaction: str) -> list[StampedEvent]:
        return await self.inner.interaction_events(interaction)

    async def last_agent(self, key: str, within_s: float) -> str | None:
        return await self.inner.last_agent(key, within_s)

    async def between(self, since: float, until: float, *, limit: int = 100_000) -> list[tuple[str, StampedEvent]]:
        return await self.inner.between(since, until, limit=limit)

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        return await self.inner.kv_get(namespace, key)

    async def kv_get_text(self, namespace: str, key: str) -> str | None:
        return await self.inner.kv_get_text(namespace, key)

    async def kv_put(self, namespace: str, key: str, value: dict[str, Any], ttl_s: float) -> None:
        await self.inner.kv_put(namespace, key, value, ttl_s)

    async def kv_delete(self, namespace: str, key: str) -> None:
        await self.inner.kv_delete(namespace, key)

    async def kv_scan(self, namespace: str, *, limit: int = 10_000) -> list[tuple[str, dict[str, Any]]]:
        return await self.inner.kv_scan(namespace, limit=limit)

    async def purge_expired(self) -> int:
        return await self.inner.purge_expired()

    async def close(self) -> None:
        await self.inner.close()

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
