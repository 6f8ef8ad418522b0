"""``GET /metrics``: the live KPIs in the Prometheus text exposition format (0.0.4).

Written by hand rather than with a client library: the numbers already live in
:class:`~ivr.journey.kpi.Kpis` (one fold for metrics and reports), so all that is left is
the text format, and that is a page of rules. Label values come from stored data (route
reasons are templates a rule author writes, node ids come from menus), so every value is
escaped as the format says and the KPI fold caps how many distinct values there are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from ivr.journey.agent_kpi import GroupStats
from ivr.journey.callback_kpi import OUTCOMES as CALLBACK_OUTCOMES
from ivr.journey.kpi import Kpis
from ivr.journey.spool import SpoolStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

KpiSource = Callable[[], Kpis]
"""Returns the current KPIs; usually ``accumulator.snapshot``."""


@dataclass(frozen=True)
class Sample:
    labels: tuple[tuple[str, str], ...]
    value: float
    suffix: str = ""  # _bucket, _sum, _count for a histogram's series


@dataclass(frozen=True)
class Family:
    name: str
    type: str  # counter | gauge | histogram
    help: str
    samples: tuple[Sample, ...]


def render_prometheus(kpis: Kpis, spool: SpoolStats | None = None, outbox: OutboxStats | None = None) -> str:
    """The whole exposition: HELP and TYPE for every family, then its samples."""
    lines: list[str] = []
    extra = (spool_families(spool) if spool is not None else []) + (
        outbox_families(outbox) if outbox is not None else [])
    for family in families(kpis) + extra:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for s in family.samples:
            labels = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in s.labels)
            lines.append(f"{family.name}{s.suffix}{{{labels}}} {_number(s.value)}" if labels
                         else f"{family.name}{s.suffix} {_number(s.value)}")
    return "\n".join(lines) + "\n"


def families(k: Kpis) -> list[Family]:
    """Every metric, in a stable order (a diff of two scrapes reads well)."""
    crm = {"ok": k.crm_ok, "unavailable": k.crm_unavailable}
    return [
        _labelled("ivr_calls_total", "counter", "Calls, USSD sessions and SMS exchanges seen, by channel.",
                  "channel", k.interactions),
        _single("ivr_ended_total", "counter",
                "Interactions that left self-service: contained, routed to agents or abandoned.", k.ended),
        _single("ivr_contained_total", "counter",
                "Interactions self-service finished: never routed to an agent, never abandoned.", k.contained),
        _single("ivr_abandoned_total", "counter",
                "Interactions the caller gave up: hung up in the menu or while waiting in a queue.", k.abandoned),
        _single("ivr_containment_ratio", "gauge", "Contained / ended interactions (NaN before any ended).",
                math.nan if k.containment is None else k.containment),
        Family("ivr_routes_total", "counter", "Interactions routed to an agent queue, by routing reason and queue.",
               tuple(Sample((("reason", r), ("queue", q)), n) for (r, q), n in sorted(k.routes.items()))),
        _labelled("ivr_route_rules_total", "counter", "Routing rules applied, by rule name.", "rule", k.rules),
        _single("ivr_agent_connects_total", "counter", "Interactions answered by an agent.", k.agent_connects),
        _single("ivr_queue_abandons_total", "counter", "Callers who gave up waiting in a queue.", k.queue_abandons),
        *_agent_families(k),
        _labelled("ivr_callbacks_requested_total", "counter", "Callbacks asked for, by the channel they came from.",
                  "channel", k.callbacks.requested),
        _labelled("ivr_callbacks_finished_total", "counter",
                  "Callbacks ended: completed, failed (retries spent), cancelled, abandoned (never reached).",
                  "outcome", {o: k.callbacks.finished.get(o, 0) for o in CALLBACK_OUTCOMES}),
        _single("ivr_callback_wait_seconds_total", "counter",
                "Seconds from callback request to conversation, summed over connected callbacks.",
                k.callbacks.waited_s_sum),
        _single("ivr_callbacks_connected_total", "counter", "Callbacks that reached a conversation.",
                k.callbacks.connected),
        _labelled("ivr_crm_lookups_total", "counter", "CRM lookups of the caller, by result.", "status", crm),
        _histogram("ivr_crm_latency_ms", "Time the CRM lookup took, in milliseconds.", k),
        _labelled("ivr_node_entries_total", "counter", "Times callers entered a menu node.", "node",
                  {n: s.entries for n, s in k.nodes.items()}),
        _labelled("ivr_node_dropoffs_total", "counter", "Callers who hung up while at a menu node.", "node",
                  {n: s.dropoffs for n, s in k.nodes.items()}),
        _labelled("ivr_node_noinput_total", "counter", "Prompts a caller answered with silence, by node.", "node",
                  {n: s.no_input for n, s in k.nodes.items()}),
        _labelled("ivr_node_nomatch_total", "counter", "Answers a node did not accept, by node.", "node",
                  {n: s.no_match for n, s in k.nodes.items()}),
    ]


def _agent_families(k: Kpis) -> list[Family]:
    """Sums and counts per queue and route reason: divide them (rate over rate) for the averages."""
    groups = sorted(k.agents.groups.items())

    def family(name: str, type_: str, help_: str, value: Callable[[GroupStats], float],
               extra: tuple[tuple[str, str], ...] = ()) -> Family:
        return Family(name, type_, help_, tuple(Sample((("queue", q), ("reason", r), *extra), value(s))
                                                for (q, r), s in groups))

    fcr = Family("ivr_fcr_contacts_total", "counter",
                 "Calls an agent answered whose first-contact window has passed, by queue, route reason and"
                 " outcome (resolved: no new contact from the customer within the window; repeat).",
                 tuple(Sample((("queue", q), ("reason", r), ("outcome", outcome)), n)
                       for (q, r), s in groups for outcome, n in (("resolved", s.fcr_resolved),
                                                                  ("repeat", s.fcr_repeat))))
    return [
        family("ivr_agent_handled_total", "counter", "Agent parts of calls completed (AgentComplete).",
               lambda s: s.handled),
        family("ivr_agent_handle_seconds_total", "counter",
               "Talk time of the completed agent parts; / ivr_agent_handled_total = average handle time.",
               lambda s: s.handle_s),
        family("ivr_agent_answers_total", "counter", "Agent answers from a queue.", lambda s: s.answered),
        family("ivr_agent_answer_wait_seconds_total", "counter",
               "Queue wait before those answers; / ivr_agent_answers_total = average time to answer.",
               lambda s: s.answer_wait_s),
        family("ivr_agent_calls_total", "counter", "Calls an agent answered (once per call).", lambda s: s.calls),
        family("ivr_transfers_total", "counter",
               "Agent transfers; / ivr_agent_calls_total = transfers per call.", lambda s: s.transfers),
        fcr,
        _single("ivr_fcr_pending", "gauge", "Answered calls still inside their first-contact window.",
                k.agents.fcr_pending),
    ]


class OutboxStats(Protocol):
    """The SMS outbox's counters (:class:`ivr.sms.outbox.OutboxStats`; metrics import no channel)."""

    waiting: int
    sent: int
    dropped: int


def outbox_families(outbox: OutboxStats) -> list[Family]:
    """The SMS outbox (ivr/sms/outbox.py): texts waiting for smsbox to answer again."""
    return [
        _single("ivr_sms_outbox_waiting", "gauge", "Outbound texts waiting for smsbox to answer.", outbox.waiting),
        _single("ivr_sms_outbox_sent_total", "counter", "Texts sent after waiting in the outbox.", outbox.sent),
        _single("ivr_sms_outbox_dropped_total", "counter",
                "Texts LOST: the outbox was full, they waited too long, or smsbox refused them.", outbox.dropped),
    ]


def spool_families(spool: SpoolStats) -> list[Family]:
    """The journey spool (ivr/journey/spool.py): a store outage is loud here, a full spool louder."""
    return [
        _single("ivr_journey_spool_waiting", "gauge",
                "Journey events accepted while the store was away, not yet stored.", spool.waiting),
        _single("ivr_journey_spool_flushed_total", "counter",
                "Spooled journey events stored once the store answered again.", spool.flushed),
        _single("ivr_journey_spool_dropped_total", "counter",
                "Journey events LOST: the spool was full, or the store refused them.", spool.dropped),
        _single("ivr_journey_store_outages_total", "counter",
                "Times the journey store stopped answering appends.", spool.outages),
    ]


def mount_metrics(app: web.Application, kpis: KpiSource, spool: SpoolStats | None = None,
                  admits: Callable[[web.Request], bool] | None = None, outbox: OutboxStats | None = None) -> None:
    """Add ``GET /metrics``. The numbers carry no personal data, but counts of calls and
    failures are the operator's business: ``admits`` decides who reads them (the HTTP side
    opens them on a loopback bind and asks for the metrics key beyond it)."""

    async def metrics(request: web.Request) -> web.Response:
        if admits is not None and not admits(request):
            return web.Response(status=401, text="metrics need the metrics key: Authorization: Bearer <key>\n",
                                headers={"WWW-Authenticate": 'Bearer realm="ivr-metrics"'})
        return web.Response(body=render_prometheus(kpis(), spool, outbox).encode("utf-8"),
                            headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/metrics", metrics)


def escape_label_value(value: str) -> str:
    """Backslash, double quote and line feed escaped, as the text format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _single(name: str, type_: str, help_: str, value: float) -> Family:
    return Family(name, type_, help_, (Sample((), value),))


def _labelled(name: str, type_: str, help_: str, label: str, values: Mapping[str, int]) -> Family:
    return Family(name, type_, help_, tuple(Sample(((label, v),), n) for v, n in sorted(values.items())))


def _histogram(name: str, help_: str, k: Kpis) -> Family:
    h = k.crm_latency_ms
    buckets: Iterable[Sample] = (Sample((("le", _number(bound)),), n, "_bucket") for bound, n in h.cumulative())
    return Family(name, "histogram", help_, (*buckets, Sample((), h.sum, "_sum"), Sample((), h.count, "_count")))


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(value) if isinstance(value, int) else repr(float(value))
