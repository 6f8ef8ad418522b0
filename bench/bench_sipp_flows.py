"""SIPp at a fixed call rate: a controller flow against the same call done by the dialplan alone.

The controller flow is a number the controller answers (90001: the minimal flow; 0611:
the demo tree's balance number, TTS prompts and SAY NUMBER included). The baseline is,
by default, its dialplan twin (bench/dialplan_twin.py): the very same call, recorded
from the controller and replayed as dialplan applications, so both cost Asterisk the
same media work and the ratio isolates what the controller adds. `--baseline selftest`
uses number 90000 instead. Both flows run in one process run, alternating, so the
machine's noise hits both. Reports completed calls/s for each, their ratio, and the
controller's CPU per call.

Usage (as root, Asterisk up):
  .venv/bin/python bench/bench_sipp_flows.py --number 0611 --keys "" --calls 300 --rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ivr.harness import dtmf_script, sipp
from ivr.settings import load_settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.dialplan_twin import install_twin  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def successful_calls(stdout: str) -> tuple[int, int]:
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", stdout)
    failed = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", stdout)
    return (int(ok[-1]) if ok else 0, int(failed[-1]) if failed else 0)


async def run_flow(settings, dnis: str, calls: int, rate: float, limit: int, keys: str) -> dict[str, float]:
    started = time.monotonic()
    result = await sipp.run_sipp(sipp.SippCall(
        target=f"127.0.0.1:{settings.sip.port}", dnis=dnis, caller="79990000000", caller_name="bench",
        call_tag=f"bench-{dnis}", steps=dtmf_script.parse(keys), delay_s=0.6, hold_s=30, calls=calls, rate=rate, max_concurrent=limit,
        timeout_s=calls / rate + 60))
    wall = time.monotonic() - started
    ok, failed = successful_calls(result.stdout)
    return {"ok": ok, "failed": failed, "wall_s": wall, "cps": ok / wall}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--limit", type=int, default=200, help="max concurrent calls")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--number", default="90001",
                        help="controller flow to compare: 90001 = minimal flow, 0611 = demo tree's balance number")
    parser.add_argument("--keys", default="1", help="DTMF the caller sends 0.6 s after answer")
    parser.add_argument("--baseline", choices=("twin", "selftest"), default="twin",
                        help="twin: the same call replayed as dialplan (bench/dialplan_twin.py); "
                             "selftest: number 90000")
    args = parser.parse_args()
    settings = load_settings()
    baseline = "90000"
    if args.baseline == "twin":
        baseline = "9" + args.number
        apps = asyncio.run(install_twin(settings, args.number, baseline))
        print(f"dialplan twin of {args.number} installed as {baseline}: {len(apps)} applications")

    log = open("/tmp/ivr-bench-serve.log", "ab")
    serve = subprocess.Popen([sys.executable, "-m", "ivr", "serve"], stdout=log, stderr=log, cwd=REPO)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{settings.http.host}:{settings.http.port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        results: dict[str, list[dict[str, float]]] = {"dialplan": [], "controller": []}
        cpu_used = 0.0
        for _ in range(args.rounds):
            results["dialplan"].append(asyncio.run(run_flow(settings, baseline, args.calls, args.rate, args.limit, args.keys)))
            before = cpu_seconds(serve.pid)
            results["controller"].append(asyncio.run(run_flow(settings, args.number, args.calls, args.rate, args.limit,
                                                              args.keys)))
            cpu_used += cpu_seconds(serve.pid) - before
    finally:
        serve.terminate()
        serve.wait(20)

    base = statistics.mean(r["cps"] for r in results["dialplan"])
    ctl = statistics.mean(r["cps"] for r in results["controller"])
    ctl_ok = sum(r["ok"] for r in results["controller"])
    print(f"offered: {args.calls} calls at {args.rate:g} calls/s, {args.rounds} rounds per flow, alternating; "
          f"controller flow: number {args.number}, keys {args.keys!r}")
    for name, runs in results.items():
        print(f"{name:10s} completed calls/s: {statistics.mean(r['cps'] for r in runs):7.2f}  "
              f"ok {sum(r['ok'] for r in runs)}  failed {sum(r['failed'] for r in runs)}")
    print(f"ratio controller/dialplan: {ctl / base:.3f}")
    if ctl_ok:
        print(f"controller CPU per call: {1000 * cpu_used / ctl_ok:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
