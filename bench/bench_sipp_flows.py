"""SIPp at a fixed call rate: a controller flow against the same call done by the dialplan alone.

The controller flow is a number the controller answers (90001: the minimal flow; 0611:
the demo tree's balance number, TTS prompts and SAY NUMBER included). The baseline is,
by default, its dialplan twin (bench/dialplan_twin.py): the very same call, recorded
from the controller and replayed as dialplan applications, so both cost Asterisk the
same media work and the ratio isolates what the controller adds. `--baseline selftest`
uses number 90000 instead. Both flows run in one process run, alternating, so the
machine's noise hits both. Reports completed calls/s for each, their ratio, and the
controller's CPU per call. ``--ari`` adds a third flow: the same number driven over ARI
(the Stasis application) instead of FastAGI, dialled as 8<number> from a copy of
numbers.yaml that names that driver; the three alternate.

Usage (as root, Asterisk up):
  .venv/bin/python bench/bench_sipp_flows.py --number 0611 --keys "" --calls 300 --rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from pathlib import Path

from ivr.harness import dtmf_script, sipp
from ivr.settings import load_settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.dialplan_twin import NotTwinnable, install_twin  # noqa: E402
from bench.own_controller import ControllerNotStarted, cpu_seconds, own_controller, require_free_ports  # noqa: E402

#: A demo customer with a balance: the controller's flow for 0611 reads it out, as the twin does
BENCH_CALLER = "79991234567"


def successful_calls(stdout: str) -> tuple[int, int]:
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", stdout)
    failed = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", stdout)
    return (int(ok[-1]) if ok else 0, int(failed[-1]) if failed else 0)


async def run_flow(settings, dnis: str, calls: int, rate: float, limit: int, keys: str,
                   target: str = "") -> dict[str, float]:
    """``calls`` calls to ``dnis`` at ``rate``, sent to ``target`` (host:port; default: the local Asterisk)."""
    started = time.monotonic()
    result = await sipp.run_sipp(sipp.SippCall(
        target=target or f"127.0.0.1:{settings.sip.port}", dnis=dnis, caller=BENCH_CALLER, caller_name="bench",
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
    parser.add_argument("--ari", action="store_true", help="also run the same flow over the ARI driver")
    parser.add_argument("--baseline", choices=("twin", "selftest"), default="twin",
                        help="twin: the same call replayed as dialplan (bench/dialplan_twin.py); "
                             "selftest: number 90000")
    args = parser.parse_args()
    settings = load_settings()
    try:  # the bench starts its own controller: one already running would take its calls and its CPU
        require_free_ports(settings)
    except ControllerNotStarted as exc:
        print(f"refusing to run: {exc}\n  {exc.hint}", file=sys.stderr)
        return 2
    baseline = "90000"
    if args.baseline == "twin" and args.number == "90001":
        print("the twin of 90001 (the minimal selftest flow) is 90000: using it")
    elif args.baseline == "twin":
        baseline = "9" + args.number
        try:
            apps = asyncio.run(install_twin(settings, args.number, baseline, BENCH_CALLER))
        except NotTwinnable as exc:
            print(f"refusing to run: {exc}; use --baseline selftest", file=sys.stderr)
            return 2
        print(f"dialplan twin of {args.number} installed as {baseline}: {len(apps)} applications")

    env: dict[str, str] = {}
    ari_number = "8" + args.number
    if args.ari:
        env["IVR_MENUS_NUMBERS"] = str(numbers_with_ari_twin(settings.path(settings.menus.numbers), args.number,
                                                             ari_number))
    flows = {"dialplan": baseline, "controller": args.number, **({"controller-ari": ari_number} if args.ari else {})}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in flows}
    cpu_used = {name: 0.0 for name in flows}
    try:
        with own_controller(settings, env, ari=args.ari) as serve:
            for _ in range(args.rounds):
                for name, dnis in flows.items():
                    before = cpu_seconds(serve.pid)
                    results[name].append(asyncio.run(run_flow(settings, dnis, args.calls, args.rate, args.limit,
                                                              args.keys)))
                    cpu_used[name] += cpu_seconds(serve.pid) - before
    except ControllerNotStarted as exc:
        print(f"refusing to run: {exc} ({exc.hint})", file=sys.stderr)
        return 2

    print(f"offered: {args.calls} calls at {args.rate:g} calls/s, {args.rounds} rounds per flow, alternating; "
          f"controller flow: number {args.number}, keys {args.keys!r}; baseline {baseline}")
    complete = True
    for name, runs in results.items():
        per_round = [r["cps"] for r in runs]
        ok = sum(r["ok"] for r in runs)
        offered = args.calls * len(runs)
        cpu = f"  controller CPU per call {1000 * cpu_used[name] / ok:.2f} ms" if ok and name != "dialplan" else ""
        print(f"{name:15s} completed calls/s: {statistics.mean(per_round):7.2f} "
              f"(rounds {', '.join(f'{c:.2f}' for c in per_round)})  ok {ok} of {offered}  "
              f"failed {sum(r['failed'] for r in runs)}{cpu}")
        if ok < offered:
            complete = False
            print(f"{name:15s} INCOMPLETE: {offered - ok} of {offered} offered calls did not complete")
    if not complete:
        print("no ratio: a flow did not complete every call it was offered (lower --rate, or read "
              "/tmp/ivr-bench-serve.log and the Asterisk log)")
        return 1
    base = [r["cps"] for r in results["dialplan"]]
    for name, runs in results.items():
        if name == "dialplan":
            continue
        ratios = [r["cps"] / b for r, b in zip(runs, base, strict=True)]
        print(f"ratio {name}/dialplan: {statistics.mean(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})")
    return 0


def numbers_with_ari_twin(numbers: Path, number: str, ari_number: str) -> Path:
    """A copy of numbers.yaml where ``ari_number`` is ``number`` served by the ARI driver."""
    import tempfile

    import yaml

    doc = yaml.safe_load(numbers.read_text(encoding="utf-8"))
    entry = doc["numbers"][number]
    doc["numbers"][ari_number] = {**(entry if isinstance(entry, dict) else {"entry": entry}), "driver": "ari"}
    out = Path(tempfile.mkdtemp(prefix="ivr-bench-")) / "numbers.yaml"
    out.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return out


if __name__ == "__main__":
    sys.exit(main())
