"""The scale-out topology under SIPp load: calls/s and CPU per call, tier by tier.

Four topologies in one run, alternating round by round so the machine's noise hits each:

- 1 Asterisk, 1 controller   SIPp -> Asterisk 1 -> controller 1
- 1 Asterisk, 2 controllers  SIPp -> Asterisk 1 -> controller 1 or 2
- 2 Asterisks, 1 controller  SIPp -> Kamailio -> Asterisk 1 or 2 -> controller 1
- 2 Asterisks, 2 controllers SIPp -> Kamailio -> Asterisk 1 or 2 -> controller 1 or 2

"One controller" is set in the Asterisks' FastAGI list (re-rendered, ``core reload``), not
by stopping the other, so no call pays for a refused connection. The flow is the demo
tree's balance number (0611: CRM lookup, TTS prompts, SAY NUMBER, the controller hangs
up), as in bench_sipp_flows.py. CPU is read from /proc for each tier's processes:
Asterisks (by root), controllers (by the cluster's environment marker), Kamailio (by its
config), PostgreSQL (the postgres user's processes).

Usage (as root; brings the cluster up if it is not):
  IVR_SPEECH_MODEL= .venv/bin/python bench/bench_cluster.py --calls 300 --rate 20 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import pwd
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_sipp_flows import cpu_seconds, run_flow  # noqa: E402
from ivr.runtime.cluster import Cluster  # noqa: E402
from ivr.runtime.local_asterisk import LocalAsterisk  # noqa: E402
from ivr.settings import load_settings  # noqa: E402

TOPOLOGIES = ((1, 1), (1, 2), (2, 1), (2, 2))  # (Asterisks, controllers)
TIERS = ("asterisk", "controller", "kamailio", "postgres")


def tier_pids(cluster: Cluster) -> dict[str, list[int]]:
    kamailio = cluster.kamailio()
    postgres_uid = pwd.getpwnam("postgres").pw_uid if _has_user("postgres") else -1
    return {
        "asterisk": [pid for a in cluster.asterisks() for pid in a.pids()],
        "controller": [pid for m in range(1, cluster.config.controllers + 1) for pid in cluster.controller_pids(m)],
        "kamailio": kamailio.pids(),
        "postgres": [pid for pid in _all_pids() if _uid(pid) == postgres_uid],
    }


def cpu_by_tier(pids: dict[str, list[int]]) -> dict[str, float]:
    return {tier: sum(_cpu(pid) for pid in group) for tier, group in pids.items()}


def use_controllers(cluster: Cluster, count: int) -> None:
    """Every Asterisk's FastAGI list: the first ``count`` controllers (re-rendered, core reload)."""
    listed = ",".join(cluster.controller_addresses()[:count])
    for n in range(1, cluster.config.asterisks + 1):
        node = cluster.asterisk_settings(n)
        LocalAsterisk(dataclasses.replace(node, agi=dataclasses.replace(node.agi, controllers=listed))).up()


def target(cluster: Cluster, asterisks: int) -> str:
    """Kamailio for two Asterisks; Asterisk 1 itself for one."""
    s = cluster.settings
    return (f"{s.sip.bind}:{s.cluster.sip_port}" if asterisks == 2
            else f"{s.sip.bind}:{cluster.asterisk_settings(1).sip.port}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--limit", type=int, default=200, help="max concurrent calls")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("IVR_SPEECH_MODEL", "")  # controllers without a recogniser: no spoken input here
    os.environ.setdefault("IVR_CLUSTER_STATE_DIR", "/tmp/ivr-bench-cluster")
    cluster = Cluster(load_settings(), log=lambda msg: print(msg, file=sys.stderr))
    cluster.up()
    results: dict[tuple[int, int], list[dict[str, float]]] = {t: [] for t in TOPOLOGIES}
    cpu: dict[tuple[int, int], dict[str, float]] = {t: dict.fromkeys(TIERS, 0.0) for t in TOPOLOGIES}
    try:
        for _ in range(args.rounds):
            for topology in TOPOLOGIES:
                asterisks, controllers = topology
                use_controllers(cluster, controllers)
                time.sleep(1)
                pids = tier_pids(cluster)
                before = cpu_by_tier(pids)
                results[topology].append(asyncio.run(run_flow(cluster.settings, "0611", args.calls, args.rate,
                                                              args.limit, "", target(cluster, asterisks))))
                after = cpu_by_tier(pids)
                for tier in TIERS:
                    cpu[topology][tier] += after[tier] - before[tier]
                print(f"{topology}: {results[topology][-1]}", file=sys.stderr)
    finally:
        use_controllers(cluster, cluster.config.controllers)
    print(f"offered: {args.calls} calls at {args.rate:g} calls/s per run, {args.rounds} rounds, topologies "
          f"alternating; flow: 0611 (CRM lookup, TTS prompts, SAY NUMBER, the controller hangs up); "
          f"{os.cpu_count()} cores")
    print("| Asterisks | controllers | completed calls/s | ok | failed | CPU ms per call: Asterisk | controller "
          "| Kamailio | PostgreSQL | all |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for topology, runs in results.items():
        ok = sum(r["ok"] for r in runs)
        per_call = {tier: 1000 * cpu[topology][tier] / ok if ok else 0.0 for tier in TIERS}
        print(f"| {topology[0]} | {topology[1]} | {statistics.mean(r['cps'] for r in runs):.2f} | {ok} | "
              f"{sum(r['failed'] for r in runs)} | " + " | ".join(f"{per_call[t]:.1f}" for t in TIERS)
              + f" | {sum(per_call.values()):.1f} |")
    return 0


def _all_pids() -> Iterable[int]:
    return (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())


def _uid(pid: int) -> int:
    try:
        return Path(f"/proc/{pid}").stat().st_uid
    except OSError:
        return -2


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return 0.0  # ended meanwhile: its CPU is lost to the figure, which is then a floor


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


if __name__ == "__main__":
    sys.exit(main())
