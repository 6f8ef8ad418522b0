"""GET /metrics: the live KPIs in the Prometheus text format 0.0.4, parseable by a scraper.

The parser below follows the format's grammar (HELP/TYPE comments, samples with quoted,
escaped label values), so a test that parses is a test a Prometheus server would accept.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.journey.kpi import Kpis, fold
from ivr.journey.ports import StampedEvent
from ivr.journey.spool import SpoolStats
from ivr.metrics.prometheus import escape_label_value, mount_metrics, render_prometheus

T0 = 1_700_000_000.0
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf"({NAME})(?:\{{(.*)\}})? (\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)')

Labels = tuple[tuple[str, str], ...]


def parse(text: str) -> tuple[dict[str, str], dict[tuple[str, Labels], float]]:
    """TYPE per family and value per (name, labels); raises AssertionError on anything malformed."""
    types: dict[str, str] = {}
    samples: dict[tuple[str, Labels], float] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert re.fullmatch(rf"# HELP {NAME} .+", line), line
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"counter", "gauge", "histogram"} and name not in types, line
            types[name] = kind
        else:
            match = SAMPLE.fullmatch(line)
            assert match, line
            name, raw_labels, value = match.groups()
            labels = tuple(_labels(raw_labels or ""))
            assert (name, labels) not in samples, f"duplicate sample {line}"
            samples[(name, labels)] = float(value)  # accepts NaN, +Inf
            assert any(name == f or name.startswith(f + "_") for f in types), f"sample before its TYPE: {line}"
    return types, samples


def _labels(raw: str) -> Iterator[tuple[str, str]]:
    pos = 0
    while pos < len(raw):
        match = LABEL.match(raw, pos)
        assert match, f"bad labels: {raw}"
        value = re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), match.group(2))
        yield match.group(1), value
        pos = match.end()


def ev(type_: str, interaction: str = "call-1", **data: object) -> StampedEvent:
    return StampedEvent(T0, "voice", interaction, type_, dict(data))


def some_kpis() -> Kpis:
    return fold(("C-1", e) for e in [
        ev("caller_identified", "a", crm_ms=12.0), ev("node_entered", "a", node="main"),
        ev("no_input", "a", node="main", count=1), ev("input_invalid", "a", node="main", count=1),
        ev("route_decided", "a", kind="queue", queue="support", reason="caller asked", rules=["vip"]),
        ev("crm_unavailable", "b", crm_ms=900.0), ev("node_entered", "b", node="main"),
        ev("hangup", "b", node="main", by="caller"),
        ev("node_entered", "c", node="balance"), ev("hangup", "c", node="balance", by="flow"),
    ])


def test_the_exposition_parses() -> None:
    types, _ = parse(render_prometheus(some_kpis()))

    assert types["ivr_calls_total"] == "counter" and types["ivr_crm_latency_ms"] == "histogram"


def test_every_family_has_help_and_type() -> None:
    text = render_prometheus(some_kpis())

    helps = set(re.findall(rf"^# HELP ({NAME}) ", text, re.M))
    assert helps == set(re.findall(rf"^# TYPE ({NAME}) ", text, re.M)) and len(helps) == 27


def test_counters_carry_the_kpis() -> None:
    _, s = parse(render_prometheus(some_kpis()))

    assert s[("ivr_calls_total", (("channel", "voice"),))] == 3
    assert (s[("ivr_contained_total", ())], s[("ivr_abandoned_total", ())], s[("ivr_ended_total", ())]) == (1, 1, 3)
    assert s[("ivr_routes_total", (("reason", "caller asked"), ("queue", "support")))] == 1
    assert s[("ivr_route_rules_total", (("rule", "vip"),))] == 1


def test_the_journey_spool_shows_what_waits_and_what_was_lost() -> None:
    types, s = parse(render_prometheus(Kpis(), SpoolStats(waiting=3, spooled=5, flushed=2, dropped=1, outages=1)))

    assert (types["ivr_journey_spool_waiting"], types["ivr_journey_spool_dropped_total"]) == ("gauge", "counter")
    assert (s[("ivr_journey_spool_waiting", ())], s[("ivr_journey_spool_flushed_total", ())],
            s[("ivr_journey_spool_dropped_total", ())], s[("ivr_journey_store_outages_total", ())]) == (3, 2, 1, 1)


def test_crm_lookups_are_labelled_by_status() -> None:
    _, s = parse(render_prometheus(some_kpis()))

    assert (s[("ivr_crm_lookups_total", (("status", "ok"),))],
            s[("ivr_crm_lookups_total", (("status", "unavailable"),))]) == (1, 1)


def test_node_funnel_counters_are_labelled_by_node() -> None:
    _, s = parse(render_prometheus(some_kpis()))

    main = (("node", "main"),)
    assert [s[(f"ivr_node_{m}_total", main)] for m in ("entries", "dropoffs", "noinput", "nomatch")] == [2, 1, 1, 1]


def test_crm_latency_histogram_buckets_are_cumulative_and_end_at_inf() -> None:
    _, s = parse(render_prometheus(some_kpis()))

    buckets = [(labels[0][1], v) for (name, labels), v in s.items() if name == "ivr_crm_latency_ms_bucket"]
    assert buckets[-1] == ("+Inf", 2) and [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert (s[("ivr_crm_latency_ms_count", ())], s[("ivr_crm_latency_ms_sum", ())]) == (2, 912.0)
    assert s[("ivr_crm_latency_ms_bucket", (("le", "25"),))] == 1


def test_containment_ratio_is_a_gauge() -> None:
    types, s = parse(render_prometheus(some_kpis()))

    assert types["ivr_containment_ratio"] == "gauge" and s[("ivr_containment_ratio", ())] == pytest.approx(1 / 3)


def test_containment_ratio_is_nan_before_any_interaction_ended() -> None:
    _, s = parse(render_prometheus(Kpis()))

    assert math.isnan(s[("ivr_containment_ratio", ())])


def test_label_values_are_escaped() -> None:
    hostile = 'say "hi"\\now\nnext'
    k = fold([("C-1", ev("route_decided", kind="queue", queue="q", reason=hostile))])

    _, s = parse(render_prometheus(k))

    assert s[("ivr_routes_total", (("reason", hostile), ("queue", "q")))] == 1


def test_escape_label_value_follows_the_format() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


async def test_metrics_endpoint_serves_the_text_format() -> None:
    app = web.Application()
    mount_metrics(app, some_kpis)

    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        resp = await client.get("/metrics")
        text = await resp.text()

    assert resp.status == 200 and resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert parse(text)[1][("ivr_contained_total", ())] == 1


async def test_metrics_endpoint_reads_the_kpis_at_each_scrape() -> None:
    current = [Kpis()]
    app = web.Application()
    mount_metrics(app, lambda: current[0])

    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        current[0] = some_kpis()
        text = await (await client.get("/metrics")).text()

    assert parse(text)[1][("ivr_ended_total", ())] == 3


def test_prometheus_clients_own_parser_reads_every_family_and_sample() -> None:
    """The exposition is hand-written (bench/bench_metrics.py: faster than prometheus_client's
    registry); the library's own text-format parser is the judge that a scraper accepts it."""
    from prometheus_client.parser import text_string_to_metric_families

    hostile = 'say "hi"\\now\nnext'
    kpis = fold([("C-1", e) for e in [ev("route_decided", "x", kind="queue", queue="q", reason=hostile)]]
                + [("C-1", e) for e in [ev("caller_identified", "a", crm_ms=12.0), ev("hangup", "c", by="flow")]])
    text = render_prometheus(kpis)
    _, ours = parse(text)

    theirs = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in text_string_to_metric_families(text) for s in family.samples}

    assert {(name, tuple(sorted(labels))): value for (name, labels), value in ours.items()
            if not math.isnan(value)} == {k: v for k, v in theirs.items() if not math.isnan(v)}
    assert theirs[("ivr_routes_total", (("queue", "q"), ("reason", hostile)))] == 1
