"""Journey store throughput and context-token latency, each next to a baseline from the same run.

Appends: one append = one IVR step (2 events, like node_entered + key_pressed), to one of
1000 customer keys; measured for a single appender (every append waits for its own commit)
and for 50 concurrent appenders (as 50 calls in progress). Baseline: MemoryJourney, which
does the same redaction and JSON work but no I/O. SQLite is measured with synchronous=FULL
(the default: survives power loss) and NORMAL (survives kill -9 only), PostgreSQL through a
pool of 50 connections on a private cluster (ivr/runtime/postgres.sh) on this machine.

Tokens: resolve() p50/p99 over already-issued tokens, against the HMAC-only check
(TokenService.verify: shape + signature, no store) as baseline.

Usage: .venv/bin/python bench/bench_journey.py [--seconds 3] [--pg-dsn DSN | --no-pg]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from ivr.journey.memory import MemoryJourney
from ivr.journey.pg_store import PgJourneyStore
from ivr.journey.ports import JourneyStore, StampedEvent
from ivr.journey.sqlite_store import SqliteJourneyStore
from ivr.journey.tokens import ContextClaim, TokenService

REPO = Path(__file__).resolve().parent.parent
KEYS = [f"7999{n:07d}" for n in range(1000)]
CONCURRENT = 50
TOKENS = 1000
RESOLVES = 5000

Opener = Callable[[], Awaitable[JourneyStore]]


def step(seq: int) -> list[StampedEvent]:
    now = time.time()
    return [StampedEvent(now, "voice", f"call-{seq}", "node_entered", {"node": "tariffs", "kind": "menu"}),
            StampedEvent(now, "voice", f"call-{seq}", "key_pressed", {"node": "tariffs", "key": "2"})]


async def appends_per_second(store: JourneyStore, appenders: int, seconds: float) -> float:
    stop = time.monotonic() + seconds
    counts = [0] * appenders

    async def appender(i: int) -> None:
        rng = random.Random(i)
        while time.monotonic() < stop:
            await store.append(rng.choice(KEYS), step(counts[i]))
            counts[i] += 1

    started = time.monotonic()
    await asyncio.gather(*(appender(i) for i in range(appenders)))
    return sum(counts) / (time.monotonic() - started)


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = statistics.median(ordered) / 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    return p50, p99


async def token_latency(store: JourneyStore) -> tuple[tuple[float, float], tuple[float, float]]:
    """((verify p50, p99), (resolve p50, p99)) in microseconds."""
    service = TokenService(os.urandom(32), store, ttl_s=3600)
    claim = ContextClaim("cust-42", "call-1", "roaming", 2, "pressed 2 then 0", "voice", time.time() - 86400)
    tokens = [await service.issue(claim) for _ in range(TOKENS)]
    rng = random.Random(7)
    verify_ns, resolve_ns = [], []
    for _ in range(RESOLVES):
        token = rng.choice(tokens)
        t0 = time.perf_counter_ns()
        service.verify(token)
        t1 = time.perf_counter_ns()
        await service.resolve(token)
        t2 = time.perf_counter_ns()
        verify_ns.append(t1 - t0)
        resolve_ns.append(t2 - t1)
    return percentiles(verify_ns), percentiles(resolve_ns)


def start_postgres() -> tuple[str, Callable[[], None]]:
    state = tempfile.mkdtemp(prefix="ivr-pg-bench-", dir="/var/tmp")
    env = {**os.environ, "IVR_PG_DIR": state}
    script = str(REPO / "ivr" / "runtime" / "postgres.sh")
    proc = subprocess.run([script, "start"], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(state, ignore_errors=True)
        raise SystemExit(f"could not start PostgreSQL: {proc.stderr[-1500:]}")

    def stop() -> None:
        subprocess.run([script, "stop"], env=env, capture_output=True)

    return proc.stdout.strip().splitlines()[-1], stop


async def run(seconds: float, pg_dsn: str | None) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ivr-bench-journey-"))
    backends: list[tuple[str, Opener]] = [
        ("memory (baseline)", lambda: _ready(MemoryJourney())),
        ("sqlite FULL", lambda: SqliteJourneyStore.open(workdir / f"full-{time.monotonic_ns()}.db")),
        ("sqlite NORMAL", lambda: SqliteJourneyStore.open(workdir / f"normal-{time.monotonic_ns()}.db",
                                                          synchronous="NORMAL")),
    ]
    if pg_dsn:
        backends.append(("postgresql", lambda: PgJourneyStore.open(pg_dsn, min_size=CONCURRENT, max_size=CONCURRENT)))

    print(f"appends (2 events each), {seconds:g} s per cell; tokens: {RESOLVES} resolves of {TOKENS} tokens\n")
    print("| backend | 1 appender: appends/s | 50 appenders: appends/s | group commit (writes/commit) "
          "| verify p50/p99 µs | resolve p50/p99 µs |")
    print("|---|---|---|---|---|---|")
    try:
        for name, opener in backends:
            store = await opener()
            try:
                await appends_per_second(store, 1, 0.3)  # warm up: files, pool, statement caches
                single = await appends_per_second(store, 1, seconds)
                before = store.commits if isinstance(store, SqliteJourneyStore) else (0, 0)
                many = await appends_per_second(store, CONCURRENT, seconds)
                group = "-"
                if isinstance(store, SqliteJourneyStore):
                    commits, writes = (a - b for a, b in zip(store.commits, before, strict=True))
                    group = f"{writes / max(commits, 1):.1f}"
                (v50, v99), (r50, r99) = await token_latency(store)
            finally:
                await store.close()
            print(f"| {name} | {single:,.0f} | {many:,.0f} | {group} | {v50:.1f} / {v99:.1f} | {r50:.1f} / {r99:.1f} |",
                  flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _ready(store: JourneyStore) -> JourneyStore:
    return store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each append measurement")
    parser.add_argument("--pg-dsn", help="use this PostgreSQL instead of starting a private cluster")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    stop: Callable[[], None] = lambda: None  # noqa: E731
    dsn = args.pg_dsn
    if not dsn and not args.no_pg:
        dsn, stop = start_postgres()
    try:
        asyncio.run(run(args.seconds, dsn))
    finally:
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
