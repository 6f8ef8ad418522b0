"""The demo flow under SIPp at rising rates, against its pure-dialplan twin in the same run.

The call: the demo customer dials 100. The controller looks them up in the CRM, greets
them by name and plays the main menu ranked for them; 8 s in, the caller presses 2
(tariffs) while the menu plays, then 0 (operator) during the tariffs menu. The
controller routes them to the support queue with a context token and their VIP
priority; 10 s after the last key they hang up. The twin (bench/dialplan_twin.py) is the same
call recorded from the controller for this path of keys and replayed as dialplan: the
same prompts in a ``Read()`` per menu, the same key checks, the same queue with the same
variables.

For each offered rate, the two flows alternate for ``--rounds`` rounds. Reported per flow:
- calls that SIPp completed and that joined the queue with a token (not the fallback);
- failed calls by SIPp's own cause (``-trace_stat``);
- the time from the last key to joining the queue (the route: a 2.9 s prompt in both flows,
  then the controller's decision, token and journey writes, against the twin's dialplan);
- the time from each key, as Asterisk received it (AMI ``DTMFEnd``), to the start of the
  next prompt (``AGIExecStart`` of ``STREAM FILE`` for the controller, ``Newexten`` of the
  twin's ``Read``/``Playback``), from the events' own timestamps (manager.conf
  ``timestampevents``), so a slow AMI reader does not count;
- the controller's CPU per call, and the ratio of completed calls/s to the twin's.

The rates climb until calls fail or the controller's 95th percentile from key to prompt
passes 300 ms (the limit), then one more rate is not tried.

Usage (as root, Asterisk up, no other controller):
  .venv/bin/python bench/bench_demo_flow.py --rates 5,10,20,30,40 --seconds 20 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_sipp_flows import BENCH_CALLER, successful_calls  # noqa: E402
from bench.dialplan_twin import NotTwinnable, install_twin  # noqa: E402
from bench.own_controller import ControllerNotStarted, cpu_seconds, own_controller, require_free_ports  # noqa: E402
from ivr.harness import dtmf_script, sipp  # noqa: E402
from ivr.harness.record import chan_variable  # noqa: E402
from ivr.runtime.local_asterisk import LocalAsterisk  # noqa: E402
from ivr.settings import Settings, load_settings  # noqa: E402
from ivr.voice.ami import AmiClient  # noqa: E402

NUMBER = "100"
TWIN = "9100"
KEYS = "20"  # tariffs, then operator
FIRST_KEY_S = 8.0  # during "For tariffs, press 2." of the main menu
#: 2, then six seconds, then 0: during the tariffs menu's third prompt
SCRIPT = "2WWWWWW0"
HOLD_S = 10.0  # after the last key (the route's prompt is 2.9 s), then the caller hangs up
LIMIT_MS = 300.0
#: The events the watch reads: keys, the start of prompts, queue joins
EVENTS = ("DTMFEnd", "AGIExecStart", "Newexten", "QueueCallerJoin")
TWIN_PROMPT_APPS = frozenset({"Read", "Playback", "SayNumber", "SayDigits"})


def is_prompt_start(event: Mapping[str, str]) -> bool:
    """A prompt starts: the controller's STREAM FILE / SAY, or the twin's Read / Playback."""
    if event.get("Event") == "AGIExecStart":
        return event.get("Command", "").startswith(("STREAM FILE", "SAY "))
    return event.get("Event") == "Newexten" and event.get("Application", "") in TWIN_PROMPT_APPS


@dataclass
class PromptWatch:
    """Key-to-prompt latencies and queue joins from one AMI session, for the flow now running."""

    pending: dict[str, float] = field(default_factory=dict)  # uniqueid -> timestamp of its last key
    last_key: dict[str, float] = field(default_factory=dict)  # uniqueid -> timestamp of its last key, kept
    latencies_ms: list[float] = field(default_factory=list)
    to_queue_ms: list[float] = field(default_factory=list)  # last key -> joined the queue
    queued: int = 0
    fallbacks: int = 0
    tokenless: int = 0

    def reset(self) -> None:
        self.pending.clear()
        self.last_key.clear()
        self.latencies_ms.clear()
        self.to_queue_ms.clear()
        self.queued = self.fallbacks = self.tokenless = 0

    def __call__(self, event: Mapping[str, str]) -> None:
        kind = event.get("Event")
        uid = event.get("Uniqueid", "")
        stamp = float(event.get("Timestamp") or 0.0)
        if kind == "DTMFEnd" and event.get("Direction") == "Received":
            self.pending[uid] = self.last_key[uid] = stamp
        elif uid in self.pending and is_prompt_start(event):
            self.latencies_ms.append(1000 * (stamp - self.pending.pop(uid)))
        elif kind == "QueueCallerJoin":
            if chan_variable(event, "IVR_ROUTE_REASON").startswith("fallback"):
                self.fallbacks += 1
            elif not chan_variable(event, "IVR_CONTEXT_TOKEN"):
                self.tokenless += 1
            else:
                self.queued += 1
                if uid in self.last_key:
                    self.to_queue_ms.append(1000 * (stamp - self.last_key.pop(uid)))


@dataclass(frozen=True)
class FlowRun:
    offered: int
    completed: int  # SIPp completed it and it joined the queue with a token
    sipp_failed: int
    causes: Mapping[str, int]
    fallbacks: int
    tokenless: int
    latencies_ms: tuple[float, ...]
    to_queue_ms: tuple[float, ...]
    cps: float
    cpu_s: float
    asterisk_cpu_s: float
    machine_busy: float  # of all cores, while the flow ran (/proc/stat)


def percentile(values: list[float] | tuple[float, ...], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores so far (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


async def run_flow(settings: Settings, watch: PromptWatch, dnis: str, calls: int, rate: float, pid: int,
                   asterisk: int) -> FlowRun:
    watch.reset()
    cpu_before, started = cpu_seconds(pid), time.monotonic()
    asterisk_before, (busy_before, total_before) = cpu_seconds(asterisk), machine_ticks()
    result = await sipp.run_sipp(sipp.SippCall(
        target=f"127.0.0.1:{settings.sip.port}", dnis=dnis, caller=BENCH_CALLER, caller_name="bench",
        call_tag=f"bench-{dnis}", steps=dtmf_script.parse(SCRIPT), delay_s=FIRST_KEY_S, hold_s=HOLD_S,
        calls=calls, rate=rate, max_concurrent=5000, timeout_s=calls / rate + 90, trace_stat=True))
    wall = time.monotonic() - started
    await asyncio.sleep(1)  # the last events on their way
    ok, failed = successful_calls(result.stdout)
    completed = min(ok, watch.queued)
    busy, total = machine_ticks()
    return FlowRun(calls, completed, failed, dict(result.failures), watch.fallbacks, watch.tokenless,
                   tuple(watch.latencies_ms), tuple(watch.to_queue_ms), completed / wall, cpu_seconds(pid) - cpu_before,
                   cpu_seconds(asterisk) - asterisk_before, (busy - busy_before) / max(1, total - total_before))


@dataclass
class RateResult:
    rate: float
    runs: dict[str, list[FlowRun]]

    def all(self, flow: str) -> FlowRun:
        runs = self.runs[flow]
        causes: dict[str, int] = {}
        for run in runs:
            for cause, n in run.causes.items():
                causes[cause] = causes.get(cause, 0) + n
        return FlowRun(sum(r.offered for r in runs), sum(r.completed for r in runs),
                       sum(r.sipp_failed for r in runs), causes, sum(r.fallbacks for r in runs),
                       sum(r.tokenless for r in runs), tuple(x for r in runs for x in r.latencies_ms),
                       tuple(x for r in runs for x in r.to_queue_ms),
                       statistics.mean(r.cps for r in runs), sum(r.cpu_s for r in runs),
                       sum(r.asterisk_cpu_s for r in runs), statistics.mean(r.machine_busy for r in runs))

    def ratios(self) -> list[float]:
        return [c.cps / t.cps if t.cps else float("nan")
                for c, t in zip(self.runs["controller"], self.runs["twin"], strict=True)]

    def past_limit(self) -> str:
        """Why this rate is past what the controller holds ("" when it holds)."""
        run = self.all("controller")
        if run.completed < run.offered:
            return f"{run.offered - run.completed} of {run.offered} calls did not reach the queue"
        p95 = percentile(run.latencies_ms, 0.95)
        return f"key to prompt p95 {p95:.0f} ms > {LIMIT_MS:.0f} ms" if p95 > LIMIT_MS else ""


def describe(name: str, run: FlowRun, cpu: bool) -> str:
    lat = run.latencies_ms
    causes = ", ".join(f"{k} {v}" for k, v in sorted(run.causes.items())) or "none"
    extra = f"  CPU/call {1000 * run.cpu_s / run.completed:.2f} ms" if cpu and run.completed else ""
    if run.offered:
        extra += (f"  Asterisk CPU/call {1000 * run.asterisk_cpu_s / run.offered:.1f} ms  "
                  f"machine busy {100 * run.machine_busy:.0f} %")
    return (f"  {name:10s} {run.cps:6.2f} calls/s  queued {run.completed}/{run.offered}  "
            f"failed {run.sipp_failed} ({causes})  fallback {run.fallbacks}  no token {run.tokenless}  "
            f"key->prompt p50 {percentile(lat, 0.5):.1f} p95 {percentile(lat, 0.95):.1f} "
            f"max {max(lat, default=float('nan')):.1f} ms (n={len(lat)})  last key->queue p50 "
            f"{percentile(run.to_queue_ms, 0.5):.0f} p95 {percentile(run.to_queue_ms, 0.95):.0f} ms{extra}")


def markdown_row(result: RateResult, seconds: float) -> str:
    twin, ctl = result.all("twin"), result.all("controller")
    ratios = result.ratios()
    lat = ctl.latencies_ms
    tlat = twin.latencies_ms
    causes = ", ".join(f"{k} {v}" for k, v in sorted({**twin.causes, **ctl.causes}.items())) or "none"
    cpu = f"{1000 * ctl.cpu_s / ctl.completed:.2f} ms" if ctl.completed else "–"
    asterisk = (f"{1000 * twin.asterisk_cpu_s / twin.offered:.1f} / {1000 * ctl.asterisk_cpu_s / ctl.offered:.1f} ms"
                f" | {100 * twin.machine_busy:.0f} / {100 * ctl.machine_busy:.0f} %")
    return (f"| {result.rate:g}/s | {int(result.rate * seconds)} × {len(ratios)} | {twin.cps:.2f} | {ctl.cps:.2f} | "
            f"**{statistics.mean(ratios):.3f}** ({min(ratios):.3f}-{max(ratios):.3f}) | "
            f"{percentile(tlat, 0.5):.0f} / {percentile(tlat, 0.95):.0f} | "
            f"{percentile(lat, 0.5):.0f} / {percentile(lat, 0.95):.0f} / {max(lat, default=0):.0f} | "
            f"{percentile(twin.to_queue_ms, 0.5):.0f} / {percentile(twin.to_queue_ms, 0.95):.0f} → "
            f"{percentile(ctl.to_queue_ms, 0.5):.0f} / {percentile(ctl.to_queue_ms, 0.95):.0f} | "
            f"{twin.offered - twin.completed} / {ctl.offered - ctl.completed} ({causes}) | {cpu} | {asterisk} |")


async def bench(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        require_free_ports(settings)
    except ControllerNotStarted as exc:
        print(f"refusing to run: {exc}\n  {exc.hint}", file=sys.stderr)
        return 2
    async with AmiClient("127.0.0.1", settings.ami.port, settings.ami.user, settings.ami.secret) as ami:
        leftovers = await ami.channel_names()
    if leftovers:  # a SIPp killed midway sends no BYE: its callers wait in the queue for minutes
        print(f"refusing to run: Asterisk has {len(leftovers)} channels up (e.g. {leftovers[0]}); a bench "
              "measures an idle machine: restart it (`ivr asterisk down; ivr asterisk up`)", file=sys.stderr)
        return 2
    try:
        apps = await install_twin(settings, NUMBER, TWIN, BENCH_CALLER, KEYS)
    except NotTwinnable as exc:
        print(f"refusing to run: {exc}", file=sys.stderr)
        return 2
    print(f"dialplan twin of {NUMBER} for keys {KEYS!r} installed as {TWIN}: {len(apps)} applications")
    asterisk_pids = LocalAsterisk(settings).asterisk_pids()
    if len(asterisk_pids) != 1:
        print(f"refusing to run: expected one local Asterisk, found {len(asterisk_pids)} (`ivr asterisk up`)",
              file=sys.stderr)
        return 2
    watch = PromptWatch()
    results: list[RateResult] = []
    try:
        with own_controller(settings, nice=args.nice) as serve:
            async with AmiClient("127.0.0.1", settings.ami.port, settings.ami.user, settings.ami.secret,
                                 events=EVENTS) as ami:
                ami.subscribe(watch)
                for rate in args.rates:
                    calls = int(rate * args.seconds)
                    result = RateResult(rate, {"twin": [], "controller": []})
                    for _ in range(args.rounds):
                        for name, dnis in (("twin", TWIN), ("controller", NUMBER)):
                            result.runs[name].append(await run_flow(settings, watch, dnis, calls, rate, serve.pid,
                                                                          asterisk_pids[0]))
                    results.append(result)
                    print(f"{rate:g} calls/s offered, {calls} calls per round, {args.rounds} rounds:", flush=True)
                    print(describe("twin", result.all("twin"), cpu=False))
                    print(describe("controller", result.all("controller"), cpu=True))
                    ratios = result.ratios()
                    print(f"  ratio controller/twin {statistics.mean(ratios):.3f} "
                          f"(rounds {', '.join(f'{r:.3f}' for r in ratios)})", flush=True)
                    reason = result.past_limit()
                    if reason:
                        print(f"  past the limit at {rate:g} calls/s: {reason}")
                        break
    except ControllerNotStarted as exc:
        print(f"refusing to run: {exc} ({exc.hint})", file=sys.stderr)
        return 2
    print("\n| offered | calls per flow | twin calls/s | controller calls/s | ratio (rounds) | "
          "twin key→prompt p50 / p95 ms | controller key→prompt p50 / p95 / max ms | "
          "last key→queue p50 / p95 ms, twin → controller | "
          "not queued twin / controller (SIPp causes) | controller CPU per call | "
          "Asterisk CPU per call twin / controller | machine busy twin / controller |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        print(markdown_row(result, args.seconds))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=lambda s: [float(r) for r in s.split(",")], default=[5.0, 10.0, 20.0, 30.0],
                        help="offered calls/s, comma-separated, in rising order")
    parser.add_argument("--seconds", type=float, default=20, help="seconds of arrivals per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--nice", type=int, default=0,
                        help="the controller's niceness (e.g. -5: scheduled ahead of Asterisk's threads; root)")
    return asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
