"""PostgreSQL stopped under the journey (a real server): appends keep coming back at once, nothing is lost.

The store ``ivr serve`` builds on PostgreSQL is the spooled one. The server is stopped
(``pg_ctl stop -m fast``, what a restart or a failover looks like from here) while events
keep arriving; each append returns without waiting on the dead server, and once the server
is back every event is stored, in the order it happened.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from ivr.backoff import Backoff
from ivr.journey.pg_store import PgJourneyStore
from ivr.journey.ports import StampedEvent
from ivr.journey.spool import SpooledJourney

from .conftest import POSTGRES_SH


class Server:
    """A private PostgreSQL cluster this test may stop and start at will."""

    def __init__(self) -> None:
        self.env = {**os.environ, "IVR_PG_DIR": tempfile.mkdtemp(prefix="ivr-pg-outage-", dir="/var/tmp"),
                    "IVR_PG_PORT": "55491"}

    def run(self, action: str) -> str:
        proc = subprocess.run([str(POSTGRES_SH), action], env=self.env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            if not os.environ.get("CI") and os.geteuid() != 0:
                pytest.skip(f"a private PostgreSQL needs root here: {proc.stderr.strip()[-500:]}")
            pytest.fail(f"postgres.sh {action} failed: {proc.stderr.strip()[-1000:]}")
        return proc.stdout.strip()


@pytest.fixture
def server() -> Iterator[Server]:
    pg = Server()
    yield pg
    pg.run("stop")


def event(n: int) -> StampedEvent:
    return StampedEvent(1_700_000_000.0 + n, "voice", "call-1", "node_entered", {"node": f"n{n}"})


def test_appends_while_postgres_is_down_return_at_once_and_are_stored_in_order_when_it_is_back(server: Server):
    dsn = server.run("start").splitlines()[-1]

    async def scenario() -> tuple[list[str], float, SpooledJourney]:
        journey = SpooledJourney(await PgJourneyStore.open(dsn), answer_within_s=1.0,
                                 backoff=Backoff(initial_s=0.2, maximum_s=1.0))
        try:
            await journey.append("C-1", [event(1)])
            await asyncio.to_thread(server.run, "pause")
            started = time.monotonic()
            for n in range(2, 6):
                await journey.append("C-1", [event(n)])
            waited = time.monotonic() - started
            assert journey.stats.waiting == 4 and journey.stats.outages == 1
            await asyncio.to_thread(server.run, "start")
            async with asyncio.timeout(60):
                await journey.drained()
            stored = [e.data["node"] for e in reversed(await journey.recent("C-1"))]
            return stored, waited, journey
        finally:
            await journey.close()

    stored, waited, journey = asyncio.run(scenario())

    assert stored == ["n1", "n2", "n3", "n4", "n5"]
    assert (journey.stats.flushed, journey.stats.dropped) == (4, 0)
    assert waited < 10, "appends must not wait on the dead server"  # a hang guard, not a timing claim
