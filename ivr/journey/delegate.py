"""A journey store that passes every call to another: the base of the stores that wrap one.

:class:`~ivr.journey.metered.MeteredJourney` counts what was stored and
:class:`~ivr.journey.spool.SpooledJourney` keeps appends while the database is away; each
overrides only what it changes and inherits the rest from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ivr.journey.ports import JourneyStore, KvPut, StampedEvent


class JourneyDelegate:
    """Every :class:`~ivr.journey.ports.JourneyStore` method, sent to ``inner`` unchanged."""

    def __init__(self, inner: JourneyStore) -> None:
        self.inner = inner

    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        await self.inner.append(key, events)

    async def put_and_append(self, puts: Sequence[KvPut], key: str, events: Sequence[StampedEvent]) -> None:
        await self.inner.put_and_append(puts, key, events)

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
