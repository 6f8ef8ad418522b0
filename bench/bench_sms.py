"""SMS replies/s through Kannel (fakesmsc -> bearerbox -> smsbox -> our /sms/kannel -> back) against our handler.

Three rows per round, the same message mix in each (BAL from the six demo customers,
HELP, TARIFF, ROAM ON, and BAL from an unknown number):

- direct:  ``await SmsService.handle(InboundSms)``: the service alone (grammar, CRM lookup,
           action, reply, shortening, journey append), the baseline
- http:    the same through our aiohttp ``GET /sms/kannel`` from an in-process client (the
           edge: query parsing, checks, headers), no Kannel
- kannel:  fakesmsc sends N messages into bearerbox's fake SMSC as fast as it can
           (``-i 0``); the clock stops when N replies have come back to fakesmsc. Kannel's
           delivery reports (two per reply with dlr-mask 31) hit /sms/dlr meanwhile, as in
           production; ``--no-dlr`` turns them off

The CRM is the demo SQLite directory behind the real CrmLookup (60 s cache) and
CrmActions; the journey is in memory, so the numbers measure the SMS path, not a
database. The rate limit is lifted. Kannel runs on free ports with a temporary state
directory; our app listens in this process on a free port; everything is on one machine.

Usage: .venv/bin/python bench/bench_sms.py [--messages 2000] [--rounds 2] [--no-dlr]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import socket
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ivr.crm.actions import CrmActions  # noqa: E402
from ivr.crm.lookup import CrmLookup  # noqa: E402
from ivr.crm.seed import seed_demo  # noqa: E402
from ivr.crm.sqlite_directory import SqliteDirectory  # noqa: E402
from ivr.journey.memory import MemoryJourney  # noqa: E402
from ivr.runtime.kannel import KannelRuntime  # noqa: E402
from ivr.settings import load_settings  # noqa: E402
from ivr.sms.config import KannelConfig, SmsConfig, load_sms_config  # noqa: E402
from ivr.sms.kannel_http import mount_sms  # noqa: E402
from ivr.sms.service import InboundSms, SmsService  # noqa: E402

FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
DEMO = ["+79991234567", "+79992088812", "+79996660013", "+78124000518", "+79991255700", "+79993119007"]
MIX = [(n, "BAL") for n in DEMO] + [(DEMO[0], "HELP"), (DEMO[1], "TARIFF"), (DEMO[3], "ROAM ON"),
                                    ("+79990001122", "BAL")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_service(config: SmsConfig, db: Path) -> tuple[SmsService, SqliteDirectory]:
    directory = SqliteDirectory(db)
    lookup = CrmLookup(directory)
    return SmsService(config, lookup, CrmActions(directory, on_change=lookup.forget), MemoryJourney()), directory


async def run_direct(service: SmsService, n: int, tag: str) -> tuple[int, float]:
    started = time.perf_counter()
    for i in range(n):
        number, text = MIX[i % len(MIX)]
        await service.handle(InboundSms(number, "1000", text, f"{tag}-{i}", "fake"))
    return n, time.perf_counter() - started


async def run_http(url: str, n: int, tag: str, connections: int = 20) -> tuple[int, float]:
    queries = [urlencode({"from": MIX[i % len(MIX)][0], "to": "1000", "text": MIX[i % len(MIX)][1],
                          "smsc": "fake", "id": f"{tag}-{i}"}) for i in range(n)]
    ok = 0
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        async def one(query: str) -> None:
            nonlocal ok
            async with session.get(f"{url}/sms/kannel?{query}") as resp:
                if resp.status == 200 and await resp.text():
                    ok += 1

        sem = asyncio.Semaphore(connections)

        async def bounded(query: str) -> None:
            async with sem:
                await one(query)

        await asyncio.gather(*(bounded(q) for q in queries))
    return ok, time.perf_counter() - started


async def run_kannel(fake_smsc_port: int, n: int, timeout_s: float) -> tuple[int, float]:
    messages = [f"{number} 1000 text {text}" for number, text in MIX]
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        "timeout", str(int(timeout_s) + 5), FAKESMSC, "-H", "127.0.0.1", "-r", str(fake_smsc_port),
        "-i", "0", "-m", str(n), *messages, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    got = 0
    assert proc.stdout is not None

    async def read() -> None:
        nonlocal got
        assert proc.stdout is not None
        while got < n:
            line = await proc.stdout.readline()
            if not line:
                return
            if b"Got message" in line:
                got += 1

    try:
        await asyncio.wait_for(read(), timeout_s)
    except TimeoutError:
        pass
    elapsed = time.perf_counter() - started
    if proc.returncode is None:
        proc.terminate()
    await proc.wait()
    return got, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-dlr", action="store_true", help="no delivery reports (dlr-mask 0)")
    parser.add_argument("--timeout", type=float, default=120.0, help="longest wait for the Kannel row, seconds")
    args = parser.parse_args()

    settings = load_settings()
    base = load_sms_config(REPO / "config" / "sms.yaml")
    kannel = dataclasses.replace(base.kannel, admin_port=free_port(), smsbox_port=free_port(),
                                 fake_smsc_port=free_port(), sendsms_port=free_port(),
                                 dlr_mask=0 if args.no_dlr else base.kannel.dlr_mask)
    config = dataclasses.replace(base, kannel=kannel,
                                 limits=dataclasses.replace(base.limits, rate_count=10**9))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-sms-") as tmp:
        db = Path(tmp) / "crm.sqlite"
        seed_demo(db, pin_iterations=1)
        app_port = free_port()
        url = f"http://127.0.0.1:{app_port}"
        runtime = KannelRuntime(settings, KannelConfig(**vars(kannel)), url=url, state_dir=Path(tmp) / "kannel")
        runtime.up()
        try:
            for rnd in range(1, args.rounds + 1):
                service, directory = build_service(config, db)
                direct = await run_direct(service, args.messages, f"d{rnd}")
                app = web.Application()
                mount_sms(app, service)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", app_port).start()
                try:
                    http = await run_http(url, args.messages, f"h{rnd}")
                    through = await run_kannel(kannel.fake_smsc_port, args.messages, args.timeout)
                finally:
                    await runner.cleanup()
                    directory.close()
                for path, (done, seconds) in (("direct", direct), ("http", http), ("kannel", through)):
                    rows.append({"round": rnd, "path": path, "messages": args.messages, "replies": done,
                                 "seconds": seconds, "rate": done / seconds if seconds else 0.0})
        finally:
            runtime.down()

    direct_rate = {r["round"]: r["rate"] for r in rows if r["path"] == "direct"}
    print(f"{args.messages} messages per row; delivery reports {'off' if args.no_dlr else 'on (dlr-mask 31)'}; "
          f"message mix: {', '.join(sorted({t for _, t in MIX}))}")
    print()
    print("| round | path | replies | seconds | replies/s | vs direct |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        share = r["rate"] / direct_rate[r["round"]] if direct_rate[r["round"]] else 0.0
        print(f"| {r['round']} | {r['path']} | {r['replies']:,} / {r['messages']:,} | {r['seconds']:.2f} | "
              f"{r['rate']:,.0f} | {share:.3f} |")
    print()
    print(json.dumps(rows))


if __name__ == "__main__":
    asyncio.run(main())
