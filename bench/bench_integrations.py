"""The context API and declared actions, each against its baseline in the same run.

``events``: signed events per second through ``POST /context/events`` against a bare aiohttp
handler that reads the same body, parses the JSON and answers 201 (the floor any HTTP API in
this process pays). Rows, alternating within each round:

- bare:     the baseline handler
- memory:   the context API over the in-memory journey (signature, checks, idempotency claim,
            append): the API's own cost
- sqlite:   the same over the journey as ``ivr serve`` builds it (SQLite in its writer
            process, behind the spool and the live KPIs)

Half the events name the customer by id, half by number (a CRM lookup in the demo SQLite
directory, cached as in production and warm before the clock starts). The client keeps ``--connections`` requests in flight
and signs every body before the clock starts.

``actions``: the latency a declared action adds to a call to the same service: a local
aiohttp order service, asked ``--requests`` times in turn, directly (aiohttp GET and JSON
parse, as a hand-written integration would) and through :class:`DeclaredHttpActions` (type
check, breaker, idempotency key, secret header, result mapping).

Usage: .venv/bin/python bench/bench_integrations.py events|actions [--rounds 3] ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ivr.agent.access_config import Client, ContextAccess  # noqa: E402
from ivr.agent.context_api import mount_context_api  # noqa: E402
from ivr.agent.intake import EventIntake, LookupKeys  # noqa: E402
from ivr.agent.signing import signed_headers  # noqa: E402
from ivr.agent.staff import StaffJourneys  # noqa: E402
from ivr.crm.declared_config import load_declared_actions  # noqa: E402
from ivr.crm.declared_http import DeclaredHttpActions  # noqa: E402
from ivr.crm.lookup import CrmLookup  # noqa: E402
from ivr.crm.seed import seed_demo  # noqa: E402
from ivr.crm.sqlite_directory import SqliteDirectory  # noqa: E402
from ivr.flow.context import CallerContext  # noqa: E402
from ivr.flow.events import ActionResult  # noqa: E402
from ivr.journey.kpi import KpiAccumulator  # noqa: E402
from ivr.journey.memory import MemoryJourney  # noqa: E402
from ivr.journey.metered import MeteredJourney  # noqa: E402
from ivr.journey.spool import SpooledJourney  # noqa: E402
from ivr.journey.sqlite_store import SqliteJourneyStore  # noqa: E402

KEY = "bench-client-key-0123456789abcdef"
CLIENT = Client("website", KEY, frozenset({"web"}), rate_per_minute=100_000_000)
NUMBERS = ["+79991234567", "+79992088812", "+78124000518", "+79991255700", "+79993119007", "+79990001122"]
CUSTOMERS = ["C-100231", "C-208812", "C-400518", "C-125570", "C-311907"]


# -- events ---------------------------------------------------------------------------------------


def bodies(n: int, tag: str) -> list[tuple[bytes, dict[str, str]]]:
    now = time.time()
    out = []
    for i in range(n):
        who = {"customer": CUSTOMERS[i % len(CUSTOMERS)]} if i % 2 else {"number": NUMBERS[i % len(NUMBERS)]}
        body = json.dumps({"id": f"{tag}-{i}", **who, "channel": "web", "kind": "page_viewed",
                           "text": "Roaming tariffs", "link": "https://nova.example/roaming",
                           "topic": "roaming"}).encode()
        out.append((body, signed_headers("website", KEY, body, now)))
    return out


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def post_all(url: str, items: list[tuple[bytes, dict[str, str]]], connections: int) -> tuple[int, float]:
    queue = list(reversed(items))
    ok = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        while queue:
            body, headers = queue.pop()
            async with session.post(url + "/context/events", data=body, headers=headers) as resp:
                await resp.read()
                ok += resp.status == 201

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        return ok, time.perf_counter() - started


def bare_app() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        body = await request.content.read(8193)
        json.loads(body)
        return web.json_response({"status": "stored"}, status=201)

    app = web.Application()
    app.router.add_post("/context/events", handler)
    return app


async def api_app(journey: Any, directory: SqliteDirectory) -> web.Application:
    lookup = CrmLookup(directory)
    for number in NUMBERS:  # steady state: the CRM cache holds the numbers (a cold burst is another bench)
        await lookup.lookup(number)
    keys = LookupKeys(lookup)
    app = web.Application()
    mount_context_api(app, ContextAccess({"website": CLIENT}, {}), EventIntake(journey, keys),
                      StaffJourneys(journey, keys))
    return app


async def bench_events(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-integrations-"))
    seed_demo(tmp / "crm.sqlite")
    directory = SqliteDirectory(tmp / "crm.sqlite")
    store = SpooledJourney(await SqliteJourneyStore.open(tmp / "journey.sqlite"))
    journeys = {"memory": MemoryJourney(), "sqlite": MeteredJourney(store, KpiAccumulator(clock=time.time))}
    results: dict[str, list[float]] = {"bare": [], "memory": [], "sqlite": []}
    try:
        for round_ in range(args.rounds):
            for name in ("bare", "memory", "sqlite"):
                app = bare_app() if name == "bare" else await api_app(journeys[name], directory)
                runner, url = await serve(app)
                try:
                    ok, elapsed = await post_all(url, bodies(args.events, f"r{round_}-{name}"), args.connections)
                finally:
                    await runner.cleanup()
                if ok != args.events:
                    raise SystemExit(f"{name}: only {ok} of {args.events} events were accepted: the run is void")
                results[name].append(ok / elapsed)
                print(f"round {round_ + 1} {name:>6}: {ok / elapsed:8.0f} events/s", flush=True)
    finally:
        await store.close()
        directory.close()
    bare = statistics.median(results["bare"])
    print(f"\n{args.events} events x {args.rounds} rounds, {args.connections} connections (median of rounds):")
    for name, rates in results.items():
        print(f"  {name:>6}: {statistics.median(rates):8.0f} events/s  (min {min(rates):.0f}, max {max(rates):.0f})"
              f"  ratio to bare {statistics.median(rates) / bare:.2f}")


# -- actions ------------------------------------------------------------------------------------


ACTIONS = """version: 1
services:
  orders:
    base_url: {url}
    timeout_ms: 2000
    secrets:
      Authorization: {{env: BENCH_TOKEN, format: "Bearer {{}}"}}
actions:
  order_status:
    service: orders
    path: /orders/{{order}}
    args: {{order: {{type: digits, min_length: 5}}}}
    result: {{status: status, eta: delivery.date}}
    failure: {{statuses: [404], error: error.message}}
    retry_safe: true
"""


class NoInner:
    async def run(self, name: str, args: Any, context: CallerContext, *, interaction: str) -> ActionResult:
        return ActionResult(name, False, {"error": "not a declared action"})


def orders_app() -> web.Application:
    async def order(request: web.Request) -> web.Response:
        return web.json_response({"order": request.match_info["order"], "status": "shipped",
                                  "delivery": {"date": "2026-12-08"}})

    app = web.Application()
    app.router.add_get("/orders/{order}", order)
    return app


async def bench_actions(args: argparse.Namespace) -> None:
    runner, url = await serve(orders_app())
    tmp = Path(tempfile.mkdtemp(prefix="bench-actions-"))
    (tmp / "actions.yaml").write_text(ACTIONS.format(url=url))
    declared = DeclaredHttpActions(load_declared_actions(tmp / "actions.yaml"), NoInner(),
                                   env={"BENCH_TOKEN": "t0ken"})
    context = CallerContext(customer={"id": "C-1", "number": "+79991234567"})
    direct_ms: list[float] = []
    declared_ms: list[float] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            async def direct(i: int) -> None:
                async with session.get(f"{url}/orders/{12345 + i}",
                                       headers={"Authorization": "Bearer t0ken", "Accept": "application/json"}) as r:
                    body = await r.json()
                    assert body["status"] == "shipped"

            async def through(i: int) -> None:
                result = await declared.run("order_status", {"order": str(12345 + i)}, context,
                                            interaction=f"bench-{i}")
                assert result.ok, result.data

            for _ in range(200):  # warm both paths' pools
                await direct(0)
                await through(0)
            for round_ in range(args.rounds):
                for name, call, into in (("direct", direct, direct_ms), ("declared", through, declared_ms)):
                    started_all = time.perf_counter()
                    for i in range(args.requests):
                        started = time.perf_counter()
                        await call(i)
                        into.append((time.perf_counter() - started) * 1000)
                    print(f"round {round_ + 1} {name:>8}: {args.requests / (time.perf_counter() - started_all):7.0f}"
                          " requests/s", flush=True)
    finally:
        await declared.aclose()
        await runner.cleanup()

    def q(values: list[float], p: float) -> float:
        return sorted(values)[int(p * (len(values) - 1))]

    print(f"\n{args.requests} requests x {args.rounds} rounds, one at a time, service in the same process:")
    for name, values in (("direct", direct_ms), ("declared", declared_ms)):
        print(f"  {name:>8}: p50 {q(values, 0.5):.3f} ms  p95 {q(values, 0.95):.3f} ms  mean "
              f"{statistics.fmean(values):.3f} ms")
    added = statistics.fmean(declared_ms) - statistics.fmean(direct_ms)
    print(f"  added by the declared action: {added * 1000:.0f} µs a call on average "
          f"(ratio of means {statistics.fmean(declared_ms) / statistics.fmean(direct_ms):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    events = sub.add_parser("events")
    events.add_argument("--events", type=int, default=5000)
    events.add_argument("--connections", type=int, default=20)
    events.add_argument("--rounds", type=int, default=3)
    actions = sub.add_parser("actions")
    actions.add_argument("--requests", type=int, default=3000)
    actions.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - the controller's loop when it is there
        pass
    asyncio.run(bench_events(args) if args.what == "events" else bench_actions(args))


if __name__ == "__main__":
    main()
