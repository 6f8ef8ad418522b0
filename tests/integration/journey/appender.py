"""Child process for test_kill9: append forever, printing each acknowledged sequence number.

``python -m tests.integration.journey.appender sqlite|postgresql <path-or-dsn> <workers>``

Each of ``workers`` concurrent tasks appends one event at a time; the line ``<seq>\\n`` is
written (one ``write(2)``, so a kill cannot leave half a line) only after ``append``
returned. Whatever the parent read is therefore a promise the store made.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from ivr.journey.pg_store import PgJourneyStore
from ivr.journey.ports import JourneyStore, StampedEvent
from ivr.journey.sqlite_store import SqliteJourneyStore

KEY = "kill9"


async def open_store(backend: str, target: str) -> JourneyStore:
    if backend == "sqlite":
        return await SqliteJourneyStore.open(target)
    return await PgJourneyStore.open(target, max_size=20)


async def main(backend: str, target: str, workers: int) -> None:
    store = await open_store(backend, target)
    os.write(1, b"ready\n")

    async def worker(first: int) -> None:
        seq = first
        while True:
            await store.append(KEY, [StampedEvent(time.time(), "voice", f"call-{seq}", "node_entered", {"seq": seq})])
            os.write(1, f"{seq}\n".encode())
            seq += workers

    await asyncio.gather(*(worker(w) for w in range(workers)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
