"""Engine throughput and per-session memory, on the demo tree.

    .venv/bin/python bench/bench_engine.py [--steps 200000] [--sessions 10000]

Throughput: handle() steps per second on one core while scripted callers walk
the demo tree (menus, conditional options, templates, actions with confirm,
timeouts, wrong keys, a route), each call a fresh Session. The same process also
times a trivial dict-lookup state machine over the same number of steps, so the
ratio says how far the engine is from "nothing at all" on this machine
regardless of its speed.

Memory: tracemalloc over N sessions that have started and wait at the main menu
(contexts are built before tracing starts: they belong to the host). Reported
with the undrained journey, and again after the host drained it.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.flow import (  # noqa: E402
    ActionResult,
    CallerContext,
    Digits,
    Event,
    RunAction,
    Session,
    Started,
    Timeout,
    load_tree,
)

TARGET_STEPS_PER_S = 50_000
TARGET_BYTES_PER_SESSION = 10 * 1024

# One call: keys as the caller presses them; "R" answers the pending action.
SCRIPT = [
    "1",
    "R",  # balance (action) -> say balance -> main
    "2",
    "1",
    "9",  # tariffs -> my tariff -> back to main
    "3",
    "1",
    "1",
    "R",
    "9",  # services -> caller ID on, confirm, done -> back
    "4",
    "2",
    "9",  # roaming -> rates -> back
    "T",
    "7",  # a timeout and a wrong key at main
    "0",  # operator: routed, the call ends
]


def context(i: int) -> CallerContext:
    return CallerContext(
        customer={
            "id": f"C{i:07d}",
            "name": "Anna",
            "balance": Decimal("1250.50"),
            "currency": "RUB",
            "debt": Decimal("300") if i % 2 else Decimal("0"),
            "segment": "vip" if i % 10 == 0 else "mass",
            "services": ["voicemail"],
            "tariff": "Smart",
        },
        caller={"number": f"+7900{i:07d}"},
        now={"hour": 12, "weekday": 2, "date": "2024-11-20"},
    )


RESULT_DATA = {"balance": Decimal("1250.50"), "currency": "RUB"}
# Events are immutable, so a host (and this bench) may reuse them.
EVENTS: list[Event | None] = [None if k == "R" else Timeout() if k == "T" else Digits(k) for k in SCRIPT]
START = Started("100")


def run_call(tree: Any, ctx: CallerContext) -> int:
    session = Session(tree, ctx)
    actions = session.handle(START)
    for event in EVENTS:
        if event is None:  # answer the action the session asked for, as a host would
            run = actions[-1]
            assert isinstance(run, RunAction)
            event = ActionResult(run.name, True, RESULT_DATA)
        actions = session.handle(event)
    session.drain_journey()
    assert session.finished, session
    return len(EVENTS) + 1


def bench_engine(tree: Any, total_steps: int) -> tuple[int, float]:
    contexts = [context(i) for i in range(64)]
    steps = 0
    calls = 0
    start = time.perf_counter()
    while steps < total_steps:
        steps += run_call(tree, contexts[calls % 64])
        calls += 1
    return steps, time.perf_counter() - start


def bench_baseline(total_steps: int) -> float:
    """A dict-lookup state machine: the cheapest 'engine' one could write."""
    table = {
        "main": {"1": "balance", "2": "tariffs", "0": "route"},
        "balance": {"1": "main"},
        "tariffs": {"9": "main"},
        "route": {},
    }
    keys = ["1", "1", "2", "9", "0"]
    state = "main"
    start = time.perf_counter()
    for i in range(total_steps):
        state = table[state].get(keys[i % 5], "main")
    return time.perf_counter() - start


def bench_memory(tree: Any, sessions: int, drained: bool) -> float:
    contexts = [context(i) for i in range(sessions)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    held = []
    for ctx in contexts:
        session = Session(tree, ctx)
        session.handle(Started("100"))
        if drained:
            session.drain_journey()
        held.append(session)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del held
    return size / sessions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--sessions", type=int, default=10_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    tree = load_tree(ROOT / "config/menus", numbers=ROOT / "config/numbers.yaml")
    run_call(tree, context(1))  # warm caches (compiled Collects per menu shape)

    steps, elapsed = bench_engine(tree, args.steps)
    rate = steps / elapsed
    base = steps / bench_baseline(steps)
    mem_live = bench_memory(tree, args.sessions, drained=False)
    mem_drained = bench_memory(tree, args.sessions, drained=True)

    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cpu(s), pinned to one core")
    print(
        f"engine:   {steps} handle() steps in {elapsed:.3f} s = {rate:,.0f} steps/s "
        f"({1e6 / rate:.1f} us/step; target >= {TARGET_STEPS_PER_S:,})"
    )
    print(f"baseline: dict-lookup loop {base:,.0f} steps/s; engine/baseline = 1/{base / rate:,.0f}")
    print(
        f"memory:   {mem_live:,.0f} bytes per idle session with its undrained journey, "
        f"{mem_drained:,.0f} after drain_journey() ({args.sessions} sessions; "
        f"target < {TARGET_BYTES_PER_SESSION:,})"
    )
    ok = rate >= TARGET_STEPS_PER_S and mem_live < TARGET_BYTES_PER_SESSION
    print("result:   " + ("PASS" if ok else "BELOW TARGET"))


if __name__ == "__main__":
    main()
