"""What only the PostgreSQL backend promises: durable commits even on a lax server, typed failures."""

from __future__ import annotations

import asyncpg
import pytest

from ivr.journey.errors import StoreUnavailable
from ivr.journey.pg_store import PgJourneyStore


async def test_a_database_set_to_synchronous_commit_off_is_used_with_it_on(pg_dsn: str) -> None:
    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', "
                            "current_database()); END $$")
    finally:
        await admin.close()

    store = await PgJourneyStore.open(pg_dsn)
    try:
        async with store._pool.acquire() as conn:
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await store.close()


async def test_an_unreachable_server_is_unavailable(tmp_path: object) -> None:
    with pytest.raises(StoreUnavailable, match="postgresql.*connect"):
        await PgJourneyStore.open(f"postgresql://postgres@/postgres?host={tmp_path}&port=1", connect_timeout_s=2)


async def test_tables_are_created_once_by_stores_opening_together(pg_dsn: str) -> None:
    import asyncio

    stores = await asyncio.gather(*(PgJourneyStore.open(pg_dsn) for _ in range(5)))
    for store in stores:
        await store.close()
