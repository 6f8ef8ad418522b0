"""The live agent page: time from a journey event being stored to it reaching an open page.

    .venv/bin/python bench/bench_live_page.py [--pages 100] [--events 300] [--rounds 3]

A server process runs the real agent API (``mount_agent_api`` with the live feed) over
the real SQLite journey store wrapped like ``ivr serve`` wraps it (``MeteredJourney``:
KPIs and the feed). The bench process opens ``--pages`` event streams
(``GET /agent/{token}/live``, what the page's script follows), each for its own customer
as agents on different calls would, then asks the server to store one event at a time
for a random one of those customers (``POST /bench/append``, spaced 20 ms apart) and
times the gap between the event's own timestamp (taken just before the store's append)
and its arrival on the page's stream. The baseline is the same with one page open;
rounds alternate the two. Browsers add their own rendering on top (a few ms), not
measured here; tests/integration/test_live_agent_page_chromium.py checks a real one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

API_KEY = "bench-key"
SECRET = b"b" * 32
GAP_S = 0.02


async def serve(pages: int, db: str) -> None:
    from ivr.agent.http import mount_agent_api
    from ivr.journey.feed import JourneyFeed
    from ivr.journey.kpi import KpiAccumulator
    from ivr.journey.metered import MeteredJourney
    from ivr.journey.ports import StampedEvent
    from ivr.journey.sqlite_store import SqliteJourneyStore
    from ivr.journey.tokens import ContextClaim, TokenService

    store = MeteredJourney(await SqliteJourneyStore.open(db), KpiAccumulator(), JourneyFeed())
    tokens = TokenService(SECRET, store, ttl_s=3600)
    now = time.time()
    issued = {f"C-{i}": await tokens.issue(ContextClaim(f"C-{i}", f"call-{i}", "support", 0, "bench", "voice",
                                                        now - 86400)) for i in range(pages)}
    app = web.Application()
    mount_agent_api(app, tokens, store, API_KEY, feed=store.feed)

    async def append(request: web.Request) -> web.Response:
        customer = request.query["customer"]
        await store.append(customer, [StampedEvent(time.time(), "ussd", f"ussd-{time.monotonic_ns()}",
                                                   "ussd_request", {"code": "*100#", "service": "balance"})])
        return web.Response(text="ok")

    app.router.add_post("/bench/append", append)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(json.dumps({"port": port, "tokens": issued}), flush=True)
    await asyncio.Event().wait()


async def follow(http: aiohttp.ClientSession, base: str, token: str, arrivals: asyncio.Queue[tuple[str, float]],
                 opened: asyncio.Event) -> None:
    async with http.get(f"{base}/agent/{token}/live", params={"key": API_KEY, "since": str(time.time())}) as resp:
        opened.set()
        event_id = ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: journey"):
                arrivals.put_nowait((token, time.time() - float(event_id) if event_id else -1.0))


async def one_round(base: str, tokens: dict[str, str], pages: int, events: int) -> list[float]:
    chosen = dict(list(tokens.items())[:pages])
    arrivals: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as http:
        opened = [asyncio.Event() for _ in chosen]
        streams = [asyncio.create_task(follow(http, base, token, arrivals, flag))
                   for token, flag in zip(chosen.values(), opened, strict=True)]
        await asyncio.gather(*(flag.wait() for flag in opened))
        await asyncio.sleep(0.5)
        customers = list(chosen)
        rng = random.Random(7)
        for _ in range(events):
            customer = rng.choice(customers)
            async with http.post(f"{base}/bench/append", params={"customer": customer}) as resp:
                await resp.read()
            token, latency = await asyncio.wait_for(arrivals.get(), 10)
            assert token == chosen[customer], "an event reached the wrong page"
            latencies.append(latency * 1000)
            await asyncio.sleep(GAP_S)
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve(args.pages, args.db)
        return
    with tempfile.TemporaryDirectory(prefix="ivr-bench-live-") as tmp:
        server = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", "--pages", str(args.pages), "--db", f"{tmp}/journey.sqlite",
            stdout=asyncio.subprocess.PIPE)
        try:
            assert server.stdout is not None
            hello = json.loads(await asyncio.wait_for(server.stdout.readline(), 60))
            base = f"http://127.0.0.1:{hello['port']}"
            results: dict[int, list[float]] = {1: [], args.pages: []}
            for r in range(args.rounds):
                for pages in ((1, args.pages) if r % 2 == 0 else (args.pages, 1)):
                    lat = await one_round(base, hello["tokens"], pages, args.events)
                    results[pages] += lat
                    print(f"round {r + 1}: {pages:>4} page(s) open: p50 {pct(lat, 0.5):.2f} ms, "
                          f"p99 {pct(lat, 0.99):.2f} ms", flush=True)
        finally:
            server.kill()
            await server.wait()
    one, many = results[1], results[args.pages]
    print(f"\nstored -> on the page, {len(many)} events each:")
    print(f"  1 page open:   p50 {pct(one, 0.5):.2f} ms, p99 {pct(one, 0.99):.2f} ms")
    print(f"  {args.pages} pages open: p50 {pct(many, 0.5):.2f} ms, p99 {pct(many, 0.99):.2f} ms")
    print(f"  ratio ({args.pages} / 1): p50 {statistics.median(many) / statistics.median(one):.2f}, "
          f"p99 {pct(many, 0.99) / pct(one, 0.99):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
