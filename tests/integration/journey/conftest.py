"""Fixtures for the journey store: a private PostgreSQL cluster, a fresh database per test,
a clock tests can move, and one ``backend`` fixture the contract suite runs over.

PostgreSQL: ``ivr/runtime/postgres.sh start`` brings up a throwaway cluster once per session, in
its own directory under /var/tmp (so two test sessions on one machine never share or stop
each other's cluster), listening only on a unix socket; the session stops and deletes it
at the end. Each test gets ``CREATE DATABASE journey_<random>``, dropped afterwards.
Set IVR_TEST_PG_DSN to use a server you started yourself instead.

If the cluster cannot start, the PostgreSQL tests fail; they are skipped (with the reason)
only on a developer's machine without root, never in CI (CI=true).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from ivr.journey.memory import MemoryJourney
from ivr.journey.pg_store import PgJourneyStore
from ivr.journey.ports import JourneyStore
from ivr.journey.sqlite_store import SqliteJourneyStore

REPO = Path(__file__).resolve().parents[3]
POSTGRES_SH = REPO / "ivr" / "runtime" / "postgres.sh"
T = TypeVar("T")


class FakeClock:
    """Unix time that moves only when a test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[str]:
    """DSN of the session's PostgreSQL cluster (its ``postgres`` database)."""
    if dsn := os.environ.get("IVR_TEST_PG_DSN"):
        yield dsn
        return
    state = tempfile.mkdtemp(prefix="ivr-pg-", dir="/var/tmp")
    env = {**os.environ, "IVR_PG_DIR": state}
    proc = subprocess.run([str(POSTGRES_SH), "start"], env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        shutil.rmtree(state, ignore_errors=True)
        reason = f"ivr/runtime/postgres.sh start failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"
        if not os.environ.get("CI") and os.geteuid() != 0:
            pytest.skip(f"PostgreSQL journey tests need root or a local PostgreSQL server; {reason}")
        pytest.fail(reason)
    try:
        yield proc.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(POSTGRES_SH), "stop"], env=env, capture_output=True, timeout=120)


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def pg_dsn(pg_cluster: str) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    name = f"journey_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(pg_cluster)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_aside(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(pg_cluster, name)
    finally:
        run_aside(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_aside(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a private loop, leaving the test's event loop (set or not) alone."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


@dataclass
class Backend:
    """How to open (and reopen) one backend at one location, and how to bypass it."""

    name: str
    open: Callable[[], Awaitable[JourneyStore]]
    # Runs raw SQL against the backend's database, around the store (None for memory).
    raw_sql: Callable[[str], Awaitable[None]] | None = None
    persistent: bool = True


BACKENDS = ["memory", "sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Backend:
    if request.param == "memory":
        store = MemoryJourney(clock=clock)

        async def open_memory() -> JourneyStore:
            return store

        return Backend("memory", open_memory, persistent=False)
    if request.param == "sqlite":
        path = tmp_path / "journey.db"

        async def open_sqlite() -> JourneyStore:
            return await SqliteJourneyStore.open(path, clock=clock)

        async def raw_sqlite(sql: str) -> None:
            import sqlite3

            conn = sqlite3.connect(path, isolation_level=None)
            try:
                conn.execute(sql)
            finally:
                conn.close()

        return Backend("sqlite", open_sqlite, raw_sqlite)
    dsn: str = request.getfixturevalue("pg_dsn")

    async def open_pg() -> JourneyStore:
        return await PgJourneyStore.open(dsn, clock=clock)

    async def raw_pg(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    return Backend("postgresql", open_pg, raw_pg)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[JourneyStore]:
    opened = await backend.open()
    yield opened
    await opened.close()
