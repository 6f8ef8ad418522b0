"""USSD gateway throughput and latency against a bare aiohttp handler, and memory per live session.

1,000 subscribers dial at once; each session is three requests, as the aggregator sends
them: dial ``*111#``, press 1 (balance: a CRM action), press 2 (tariffs). Every request
of the gateway loads the session record from the kv table, runs the engine, renders the
screen and writes the record and the journey in one durable write. Baseline, in the same
run and with the same client, server and request pattern: a bare aiohttp handler that
reads the body and answers ``CON ok``. The server is in this process on 127.0.0.1, with
the GC settings ``ivr serve`` uses; the load client is a separate process (an aggregator
is another host), with ``--connections`` keep-alive connections: 1,000 puts every
session's request in flight at once, 100 makes the client queue the rest. Each round's
subscribers are new numbers. Reported per row: requests/s, latency p50/p99 as the client
sees it, and the server's CPU per request (all its threads, and the SQLite writer's process).

The CRM is an in-memory directory behind the real CrmLookup/CrmActions (cache, breaker,
budgets), so the numbers measure the gateway, not a database. The journey store is
measured in memory (MemoryJourney), in SQLite (synchronous=FULL: every write fsynced;
group commit) and, with ``--pg DSN``, in PostgreSQL. Memory per live session: the kv
payload (record + resume pointer, JSON bytes), the Python heap a live mid-menu session
holds in the gateway (tracemalloc) and the process RSS growth while the sessions are live.

The server runs on the event loop ``ivr serve`` uses (uvloop; ``--loop asyncio`` for the
standard one); the load client always runs on the standard loop.

Usage: .venv/bin/python bench/bench_ussd.py [--sessions 1000] [--connections 1000] [--rounds 2]
       [--no-memory] [--no-sqlite] [--pg DSN] [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ivr.crm.action_catalog import ACTION_ARGS  # noqa: E402
from ivr.crm.actions import CrmActions  # noqa: E402
from ivr.crm.customer import Customer  # noqa: E402
from ivr.crm.directory_ports import ActionOutcome  # noqa: E402
from ivr.crm.lookup import CrmLookup  # noqa: E402
from ivr.flow.loader import load_tree  # noqa: E402
from ivr.journey.memory import MemoryJourney  # noqa: E402
from ivr.journey.ports import JourneyStore  # noqa: E402
from ivr.journey.sqlite_store import SqliteJourneyStore  # noqa: E402
from ivr.live.trees import TreeStore  # noqa: E402
from ivr.runtime import event_loop  # noqa: E402
from ivr.runtime.event_loop import EVENT_LOOPS  # noqa: E402
from ivr.runtime.gc_policy import tune_for_serving  # noqa: E402
from ivr.settings import RuntimeSettings  # noqa: E402
from ivr.ussd import UssdGateway, load_ussd_config, mount_ussd  # noqa: E402
from ivr.ussd.protocol import UssdRequest, split_text  # noqa: E402

STEPS = ("", "1", "1*2")  # the `text` of the three requests of a session


class MemoryDirectory:
    """Customers in a dict; answers at once (the bench measures the gateway, not a CRM)."""

    def __init__(self, numbers: list[str]) -> None:
        self.customers = {n: Customer(id=f"C-{i:06d}", number=n, name=f"Subscriber {i}", balance=Decimal("512.40"),
                                      tariff="Smart", services={"caller_id": True, "voicemail": False})
                          for i, n in enumerate(numbers)}

    async def by_number(self, e164: str) -> Customer | None:
        return self.customers.get(e164)

    async def by_account(self, account: str, pin: str) -> Customer | None:
        return None

    async def run_action(self, name: str, args: Mapping[str, Any], customer_id: str,
                         idempotency_key: str) -> ActionOutcome:
        return ActionOutcome(name, True, {"balance": Decimal("512.40"), "currency": "RUB"})


def writer_cpu_s(journey: JourneyStore) -> float:
    """CPU seconds of the SQLite store's writer process so far (0 for other stores): it is
    the server's work too, done in a process of its own."""
    writer = getattr(journey, "_writer", None)
    pid = getattr(writer, "pid", None)
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def bare(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="CON ok", content_type="text/plain")


async def run_sessions(http: aiohttp.ClientSession, url: str, numbers: list[str], tag: str
                       ) -> tuple[float, list[float], int]:
    """Every number runs one session (3 requests) concurrently; (wall s, latencies ms, errors)."""
    latencies: list[float] = []
    errors = 0

    async def session(i: int, number: str) -> None:
        nonlocal errors
        for text in STEPS:
            form = {"sessionId": f"{tag}-{i}", "serviceCode": "*111#", "phoneNumber": number,
                    "networkCode": "25001", "text": text}
            started = time.perf_counter()
            async with http.post(url, data=form) as response:
                body = await response.text()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200 or not body.startswith("CON "):
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(session(i, n) for i, n in enumerate(numbers)))
    return time.perf_counter() - started, latencies, errors


async def client_main(url: str, numbers: list[str], tag: str, connections: int) -> None:
    """The load client as its own process (``--client URL``): prints (wall s, latencies, errors) as JSON."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as http:
        wall, latencies, errors = await run_sessions(http, url, numbers, tag)
    print(json.dumps([wall, latencies, errors]))


async def run_sessions_elsewhere(url: str, numbers: list[str], tag: str, connections: int
                                 ) -> tuple[float, list[float], int]:
    """The same load from a separate process, so client and server each have a core, as an
    aggregator on another host would; the server process does nothing but serve."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", url, "--tag", tag, "--connections", str(connections),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate(json.dumps(numbers).encode())
    wall, latencies, errors = json.loads(out)
    return float(wall), [float(x) for x in latencies], int(errors)


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def demo_gateway(numbers: list[str], journey: JourneyStore) -> UssdGateway:
    """The shipped USSD config and menus, the real CRM ports over ``numbers`` in memory."""
    directory = MemoryDirectory(numbers)
    config = load_ussd_config(REPO / "config/ussd.yaml", env={})
    trees = TreeStore(lambda: load_tree(REPO / "config/menus", numbers=REPO / "config/numbers.yaml",
                                        known_actions=ACTION_ARGS))
    return UssdGateway(config, trees, CrmLookup(directory), CrmActions(directory), journey)


async def measure(journey: JourneyStore, label: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    # Each round's subscribers are new ones: a number that dialled before would get the
    # offer to continue its earlier session, and the rounds would not measure the same thing.
    rounds = [[f"+7999{r:02d}{n:05d}" for n in range(args.sessions)] for r in range(args.rounds + 1)]
    gateway = demo_gateway([n for numbers in rounds for n in numbers], journey)
    app = web.Application()
    mount_ussd(app, gateway)
    app.router.add_post("/bare", bare)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    tune_for_serving()  # as `ivr serve` does once built
    rows = []
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector) as http:
        await run_sessions(http, f"http://127.0.0.1:{port}/bare", rounds[-1][:50], "warm-bare")
        await run_sessions(http, f"http://127.0.0.1:{port}/ussd", rounds[-1][:50], "warm-ussd")
        for r in range(args.rounds):
            numbers = rounds[r]
            gc.collect()
            rss_before = rss_bytes()
            if args.client_in_process:
                bare_cpu = ussd_cpu = math.nan  # client and server share the process
                bare_s, bare_lat, bare_err = await run_sessions(http, f"http://127.0.0.1:{port}/bare", numbers,
                                                                f"bare{r}")
                ussd_s, ussd_lat, ussd_err = await run_sessions(http, f"http://127.0.0.1:{port}/ussd", numbers,
                                                                f"{label}{r}")
            else:
                cpu = time.process_time()
                bare_s, bare_lat, bare_err = await run_sessions_elsewhere(
                    f"http://127.0.0.1:{port}/bare", numbers, f"bare{r}", args.connections)
                bare_cpu, cpu = time.process_time() - cpu, time.process_time() + writer_cpu_s(journey)
                ussd_s, ussd_lat, ussd_err = await run_sessions_elsewhere(
                    f"http://127.0.0.1:{port}/ussd", numbers, f"{label}{r}", args.connections)
                ussd_cpu = time.process_time() + writer_cpu_s(journey) - cpu
            gc.collect()
            rss_after = rss_bytes()
            requests = len(numbers) * len(STEPS)
            rows.append({
                "journey": label, "round": r + 1,
                "bare_rps": requests / bare_s, "ussd_rps": requests / ussd_s,
                "ratio": (requests / ussd_s) / (requests / bare_s),
                "bare_p50": p(bare_lat, 0.5), "bare_p99": p(bare_lat, 0.99),
                "ussd_p50": p(ussd_lat, 0.5), "ussd_p99": p(ussd_lat, 0.99),
                "errors": bare_err + ussd_err,
                # Server CPU per request: every thread, and the SQLite writer's process.
                "bare_cpu_us": bare_cpu / requests * 1e6, "ussd_cpu_us": ussd_cpu / requests * 1e6,
                "rss_per_session": (rss_after - rss_before) / len(numbers),
            })
    if isinstance(journey, MemoryJourney):
        sizes = [len(text.encode()) for (ns, _), (text, _) in journey._kv.items() if ns == "ussd"]
        pointers = [len(text.encode()) for (ns, _), (text, _) in journey._kv.items() if ns == "ussd_resume"]
        rows[-1]["kv_record"] = statistics.mean(sizes)
        rows[-1]["kv_pointer"] = statistics.mean(pointers) if pointers else 0.0
        rows[-1]["kv_records"] = len(sizes)
    await runner.cleanup()
    return rows


async def live_session_memory(sessions: int) -> dict[str, float]:
    """Python heap held per live session (mid-menu, after two requests), by tracemalloc.

    The gateway is called directly (no HTTP: connection buffers are not a session's) over a
    SQLite store, so what stays in the process is the gateway's own state: the cached engine
    walk and the decoded record. The kv record itself is on disk (its size is reported apart).
    """
    numbers = [f"+7998{n:07d}" for n in range(sessions)]
    with tempfile.TemporaryDirectory() as tmp:
        store = await SqliteJourneyStore.open(Path(tmp) / "journey.db")
        try:
            gateway = demo_gateway(numbers, store)
            warm = UssdRequest("warm", "*111#", numbers[0], "25001", "", ())
            await gateway.answer(warm)
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for text in STEPS[:2]:
                await asyncio.gather(*(gateway.answer(UssdRequest(f"live-{i}", "*111#", n, "25001", text,
                                                                  split_text(text)))
                                       for i, n in enumerate(numbers)))
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
            walks = len(gateway.menus._walks)
            tracemalloc.stop()
        finally:
            await store.close()
    return {"per_session": held / sessions, "walks_cached": walks}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--pg", metavar="DSN", help="also measure a PostgreSQL journey store (ivr/runtime/postgres.sh start "
                        "prints a throwaway one); its tables are emptied first")
    parser.add_argument("--client-in-process", action="store_true",
                        help="run the load client in the server's process and event loop (the old way)")
    parser.add_argument("--loop", choices=EVENT_LOOPS, default=RuntimeSettings().event_loop,
                        help="the server's event loop (default: what `ivr serve` runs on); the client's is asyncio")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="s", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        await client_main(args.client, json.load(sys.stdin), args.tag, args.connections)
        return
    rows = [] if args.no_memory else await measure(MemoryJourney(max_events_per_key=100), "memory", args)
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            store = await SqliteJourneyStore.open(Path(tmp) / "journey.db")
            try:
                rows += await measure(store, "sqlite", args)
            finally:
                await store.close()
    if args.pg:
        from ivr.journey.pg_store import PgJourneyStore
        pg = await PgJourneyStore.open(args.pg)
        try:
            await pg._pool.execute("TRUNCATE journey_kv")  # the bench's own sessions only
            rows += await measure(pg, "postgresql", args)
        finally:
            await pg.close()
    where = "in the server's process" if args.client_in_process else "in its own process"
    print(f"{args.sessions} concurrent sessions x {len(STEPS)} requests, {args.connections} connections, "
          f"client {where}, server on {type(asyncio.get_running_loop()).__module__.split('.')[0]}, "
          f"Python {sys.version.split()[0]}")
    print()
    print("| journey | round | bare req/s | gateway req/s | ratio | bare p50/p99 ms | gateway p50/p99 ms "
          "| server CPU µs/request, bare / gateway | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['journey']} | {row['round']} | {row['bare_rps']:,.0f} | {row['ussd_rps']:,.0f} | "
              f"{row['ratio']:.2f} | {row['bare_p50']:.1f} / {row['bare_p99']:.1f} | "
              f"{row['ussd_p50']:.1f} / {row['ussd_p99']:.1f} | {row['bare_cpu_us']:.0f} / {row['ussd_cpu_us']:.0f} | "
              f"{row['errors']} |")
    print()
    print("| memory per live session | bytes |")
    print("|---|---|")
    memory = next((row for row in rows if "kv_record" in row), None)
    if memory is not None:
        print(f"| kv record (JSON), mean of {memory['kv_records']:,} | {memory['kv_record']:,.0f} |")
        print(f"| kv resume pointer (JSON) | {memory['kv_pointer']:,.0f} |")
    live = await live_session_memory(args.sessions)
    print(f"| Python heap per live session, SQLite store (cached engine walk and decoded record; "
          f"{live['walks_cached']:,} walks cached) | {live['per_session']:,.0f} |")
    for row in rows:
        where = ("records and journey events in the process" if row["journey"] == "memory"
                 else "records and journey in SQLite; cached engine sessions in the process")
        print(f"| process RSS growth per session, {row['journey']} round {row['round']} ({where}) | "
              f"{row['rss_per_session']:,.0f} |")
    print()
    print(json.dumps(rows, default=float))


def server_loop(argv: list[str]) -> str:
    """The event loop to serve on: ``--loop``, else what ``ivr serve`` uses; the load client
    (``--client``) stays on the standard loop, so the baseline's client is the same in every run."""
    if "--client" in argv:
        return "asyncio"
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--loop", default=RuntimeSettings().event_loop)
    return str(peek.parse_known_args(argv[1:])[0].loop)


if __name__ == "__main__":
    event_loop.run(main(), server_loop(sys.argv))
