"""Soak: a steady call rate for minutes; does the controller's memory or its open files grow?

Starts its own controller (refusing to run when another holds its ports), then SIPp offers
one flow at a steady rate for ``--minutes``. Every ``--every`` seconds it samples the
controller's resident memory and open file descriptors (its children's too: the journey
writer). It writes the samples as a Markdown table and a plot (PNG, matplotlib from the
``bench`` extra) and judges them: flat means the average of the last minute is within 5 %
of the average of the second minute (the first is warm-up: caches fill, the CRM directory
pages in). Exit status 1 when the controller's memory or descriptors are not flat, or calls
failed; its children's memory is judged and shown, not required.

Usage (as root, Asterisk up, no other controller):
  .venv/bin/python bench/bench_soak.py --minutes 10 --rate 5 --number 0611
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_sipp_flows import BENCH_CALLER, successful_calls  # noqa: E402
from bench.own_controller import ControllerNotStarted, own_controller  # noqa: E402
from ivr.harness import dtmf_script, sipp  # noqa: E402
from ivr.runtime.listening import with_descendants  # noqa: E402
from ivr.settings import load_settings  # noqa: E402

FLAT = 0.05


@dataclass(frozen=True)
class Sample:
    at_s: float
    rss_mb: float
    fds: int
    children_rss_mb: float
    live_calls: int


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sample(pid: int, started: float, health_url: str) -> Sample:
    children = with_descendants([pid]) - {pid}
    try:
        with urllib.request.urlopen(health_url, timeout=2) as resp:
            live = int(json.loads(resp.read()).get("live_calls", 0))
    except OSError:
        live = -1
    return Sample(time.monotonic() - started, rss_mb(pid), len(os.listdir(f"/proc/{pid}/fd")),
                  sum(rss_mb(c) for c in children if Path(f"/proc/{c}").exists()), live)


def window(samples: list[Sample], start_s: float, end_s: float, field: str) -> float:
    values = [getattr(s, field) for s in samples if start_s <= s.at_s < end_s]
    return statistics.mean(values) if values else float("nan")


def judge(samples: list[Sample], duration_s: float) -> dict[str, tuple[float, float, bool]]:
    """Per series: (second-minute mean, last-minute mean, flat)."""
    out = {}
    for field in ("rss_mb", "fds", "children_rss_mb"):
        # the last minute of the steady load: the drain after it (calls ending, descriptors closing) is not load
        second, last = window(samples, 60, 120, field), window(samples, duration_s - 60, duration_s, field)
        out[field] = (second, last, abs(last - second) <= FLAT * max(second, 1e-9))
    return out


def write_table(samples: list[Sample], verdict: dict[str, tuple[float, float, bool]], path: Path, header: str) -> None:
    lines = [header, "", "| t (s) | controller RSS (MB) | open fds | children RSS (MB) | live calls |",
             "|---|---|---|---|---|"]
    lines += [f"| {s.at_s:.0f} | {s.rss_mb:.1f} | {s.fds} | {s.children_rss_mb:.1f} | {s.live_calls} |"
              for s in samples]
    lines += ["", "| series | second minute | last minute | change | flat (within 5 %) |", "|---|---|---|---|---|"]
    for field, (second, last, flat) in verdict.items():
        lines.append(f"| {field} | {second:.1f} | {last:.1f} | {100 * (last - second) / max(second, 1e-9):+.1f} % "
                     f"| {'yes' if flat else 'NO'} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_plot(samples: list[Sample], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.at_s / 60 for s in samples]
    fig, (mem, fds) = plt.subplots(2, 1, sharex=True, figsize=(8, 5))
    mem.plot(t, [s.rss_mb for s in samples], label="controller")
    mem.plot(t, [s.children_rss_mb for s in samples], label="its children (journey writer)")
    mem.set_ylabel("resident MB")
    mem.set_ylim(bottom=0)
    mem.legend(loc="lower right")
    fds.plot(t, [s.fds for s in samples], color="tab:red")
    fds.set_ylabel("open fds")
    fds.set_ylim(bottom=0)
    fds.set_xlabel("minutes")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


async def soak(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        with own_controller(settings) as serve:
            duration = args.minutes * 60
            calls = int(args.rate * duration)
            started = time.monotonic()
            run = asyncio.create_task(sipp.run_sipp(sipp.SippCall(
                target=f"127.0.0.1:{settings.sip.port}", dnis=args.number, caller=BENCH_CALLER, caller_name="soak",
                call_tag="soak", steps=dtmf_script.parse(args.keys), delay_s=0.6, hold_s=30, calls=calls,
                rate=args.rate, max_concurrent=3000, timeout_s=duration + 120)))
            samples: list[Sample] = []
            health = f"{settings.http.local_url}/healthz"
            while not run.done():
                samples.append(sample(serve.pid, started, health))
                print(f"{samples[-1].at_s:6.0f} s  RSS {samples[-1].rss_mb:6.1f} MB  fds {samples[-1].fds:4d}  "
                      f"children {samples[-1].children_rss_mb:6.1f} MB  live {samples[-1].live_calls}", flush=True)
                await asyncio.wait([run], timeout=args.every)
            result = run.result()
    except ControllerNotStarted as exc:
        print(f"refusing to run: {exc} ({exc.hint})", file=sys.stderr)
        return 2
    ok, failed = successful_calls(result.stdout)
    verdict = judge(samples, duration)
    header = (f"Soak: number {args.number}, keys {args.keys!r}, {args.rate:g} calls/s for {args.minutes:g} min "
              f"({calls} calls offered, {ok} completed, {failed} failed), sampled every {args.every:g} s.\n\n"
              f"Command: `.venv/bin/python bench/bench_soak.py --minutes {args.minutes:g} --rate {args.rate:g} "
              f"--number {args.number}`")
    out = Path(args.out)
    write_table(samples, verdict, out.with_suffix(".md"), header)
    write_plot(samples, out.with_suffix(".png"), f"ivr serve under {args.rate:g} calls/s of {args.number}")
    for field, (second, last, flat) in verdict.items():
        print(f"{field:16s} second minute {second:8.1f}  last minute {last:8.1f}  {'flat' if flat else 'NOT FLAT'}")
    print(f"calls: {ok} completed, {failed} failed of {calls}; table {out.with_suffix('.md')}, "
          f"plot {out.with_suffix('.png')}")
    # The criterion: the controller's own memory and descriptors. Its children (the journey
    # writer, whose SQLite page cache fills as the file grows) are shown and judged, not required.
    return 0 if failed == 0 and ok == calls and verdict["rss_mb"][2] and verdict["fds"][2] else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=5)
    parser.add_argument("--number", default="0611", help="the flow: 0611 = CRM balance read out, then goodbye")
    parser.add_argument("--keys", default="")
    parser.add_argument("--every", type=float, default=10, help="seconds between samples")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "soak"),
                        help="where the table (.md) and the plot (.png) go")
    return asyncio.run(soak(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
