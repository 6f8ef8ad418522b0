"""/metrics exposition: the hand-written renderer against prometheus_client, in the same run.

    .venv/bin/python bench/bench_metrics.py [--scrapes 2000] [--rounds 5]

Both render the same KPIs (a fold of a day of a busy line: 60 menu nodes, 40 routes, 12
rules, the CRM latency histogram) to the text format 0.0.4:

- hand-written: ``ivr.metrics.prometheus.render_prometheus`` (what ``GET /metrics`` serves)
- prometheus_client: a custom ``Collector`` yielding the same families, rendered by
  ``prometheus_client.exposition.generate_latest`` over a registry holding only it

Rounds alternate the two, so drift on a noisy machine hits them alike; the figure is the
ratio of the medians (client / hand-written: above 1 means the hand-written one is faster).
The library's parser checks the hand-written text in tests/unit/metrics/test_metrics.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client.core import (  # noqa: E402
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import generate_latest  # noqa: E402

from ivr.journey.kpi import Kpis, fold  # noqa: E402
from ivr.journey.ports import StampedEvent  # noqa: E402
from ivr.metrics.prometheus import families, render_prometheus  # noqa: E402


def busy_day() -> Kpis:
    events: list[tuple[str, StampedEvent]] = []
    for i in range(3000):
        call = f"call-{i}"
        events.append(("C", StampedEvent(float(i), "voice", call, "caller_identified", {"crm_ms": float(i % 300)})))
        for n in range(3):
            events.append(("C", StampedEvent(float(i), "voice", call, "node_entered", {"node": f"node{(i + n) % 60}"})))
        events.append(("C", StampedEvent(float(i), "voice", call, "route_decided", {
            "kind": "queue", "queue": f"q{i % 8}", "reason": f"reason {i % 5}", "rules": [f"rule{i % 12}"]})))
    return fold(events)


class KpiCollector:
    """The same families as ``families()``, as prometheus_client metric families."""

    def __init__(self, kpis: Kpis) -> None:
        self.kpis = kpis

    def collect(self) -> Iterator[object]:
        for fam in families(self.kpis):
            if fam.type == "histogram":
                buckets = [(s.labels[0][1], s.value) for s in fam.samples if s.suffix == "_bucket"]
                total = next(s.value for s in fam.samples if s.suffix == "_sum")
                yield HistogramMetricFamily(fam.name, fam.help, buckets=buckets, sum_value=total)
                continue
            names = [k for k, _ in fam.samples[0].labels] if fam.samples else []
            cls = CounterMetricFamily if fam.type == "counter" else GaugeMetricFamily
            metric = cls(fam.name.removesuffix("_total") if fam.type == "counter" else fam.name, fam.help,
                         labels=names)
            for s in fam.samples:
                metric.add_metric([v for _, v in s.labels], s.value)
            yield metric


def timed(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scrapes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    kpis = busy_day()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(KpiCollector(kpis))  # type: ignore[arg-type]
    ours, theirs = [], []
    for _ in range(args.rounds):
        ours.append(timed(lambda: render_prometheus(kpis).encode(), args.scrapes))
        theirs.append(timed(lambda: generate_latest(registry), args.scrapes))
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"families {len(families(kpis))}, bytes {len(render_prometheus(kpis))}")
    print(f"hand-written       median {o:8.1f} us/scrape  (rounds {', '.join(f'{x:.0f}' for x in ours)})")
    print(f"prometheus_client  median {t:8.1f} us/scrape  (rounds {', '.join(f'{x:.0f}' for x in theirs)})")
    print(f"ratio client / hand-written: {t / o:.2f}")


if __name__ == "__main__":
    main()
