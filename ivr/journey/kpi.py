"""What the business measures, folded from journey events: containment, routes, the menu funnel.

Pure: events in, :class:`Kpis` out. The same fold serves the live counters (an
accumulator fed by every append, see :mod:`ivr.journey.metered`) and a report over a time
range (``fold(await store.between(since, until))``), so ``/metrics`` and ``ivr report``
cannot disagree on what "contained" means.

How an interaction (a call, a USSD session, an SMS exchange) ends, decided from its events:

- **abandoned**: the caller hung up in the middle of the flow (``hangup`` by ``caller``) or
  gave up waiting in the queue (``queue_abandoned``). Abandoned is final: it never counts
  as contained, nor as routed.
- **routed**: handed to an agent queue (``route_decided`` kind ``queue``, or, for a channel
  without a router, ``route_chosen``), or answered by an agent.
- **contained**: ended without either: the flow hung up (self-service done), or the routing
  rules refused the call (``route_decided`` kind ``hangup``: blacklist, after hours).

Containment is contained / ended. An outcome may change while the interaction goes on
(routed, then abandoned in the queue), so the accumulator remembers the newest
:data:`MAX_TRACKED_INTERACTIONS` interactions; one seen again after it was forgotten counts
as a new one. A range report counts an interaction in the range that holds its events: a
call that straddles the boundary shows up, partially, in both.

Label values that grow without bound (route reasons are templates and may carry an amount)
are capped at :data:`MAX_LABEL_VALUES` per dimension; the rest are counted under
:data:`OTHER`, so a metrics scrape stays small whatever the data.
"""

from __future__ import annotations

import json
import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ivr.journey import events as E
from ivr.journey.agent_kpi import DEFAULT_FCR_WINDOW_S, AgentKpis, AgentStats
from ivr.journey.callback_kpi import OUTCOMES, CallbackKpis, CallbackStats
from ivr.journey.offer_kpi import OfferKpis, OfferStats
from ivr.journey.ports import StampedEvent

CRM_LATENCY_BUCKETS_MS: tuple[float, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
"""Upper bounds of the CRM latency histogram: the lookup budget is a few hundred ms."""

MAX_TRACKED_INTERACTIONS = 100_000
MAX_LABEL_VALUES = 200
MAX_LABEL_CHARS = 120
OTHER = "(other)"

CONTAINED = "contained"
ROUTED = "routed"
ABANDONED = "abandoned"


@dataclass(frozen=True)
class Histogram:
    """Observations per bucket: ``counts[i]`` are those ``<= bounds[i]`` and above the bound
    before; the last count is above every bound (Prometheus' ``+Inf``)."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float = 0.0

    @classmethod
    def empty(cls, bounds: tuple[float, ...] = CRM_LATENCY_BUCKETS_MS) -> Histogram:
        return cls(bounds, (0,) * (len(bounds) + 1))

    @property
    def count(self) -> int:
        return sum(self.counts)

    def observe(self, value: float) -> Histogram:
        i = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        counts = list(self.counts)
        counts[i] += 1
        return replace(self, counts=tuple(counts), sum=self.sum + value)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations <= it)``, ending with ``(inf, count)``."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def quantile_bound(self, q: float) -> float | None:
        """The smallest bucket bound holding at least ``q`` of the observations (None if empty)."""
        total = self.count
        if total == 0:
            return None
        return next(bound for bound, seen in self.cumulative() if seen >= q * total)


@dataclass(frozen=True)
class NodeStats:
    """The funnel of one menu node: how many came, left, said nothing, said something wrong."""

    entries: int = 0
    dropoffs: int = 0  # the caller hung up while at this node
    no_input: int = 0
    no_match: int = 0


@dataclass(frozen=True)
class Kpis:
    """A snapshot of the KPIs; ``routes`` is keyed by ``(reason, queue)``."""

    interactions: Mapping[str, int] = field(default_factory=dict)  # channel -> calls / sessions / messages
    ended: int = 0
    contained: int = 0
    routed: int = 0
    abandoned: int = 0
    routes: Mapping[tuple[str, str], int] = field(default_factory=dict)
    rules: Mapping[str, int] = field(default_factory=dict)
    agent_connects: int = 0
    queue_abandons: int = 0
    crm_ok: int = 0
    crm_unavailable: int = 0
    crm_latency_ms: Histogram = field(default_factory=Histogram.empty)
    nodes: Mapping[str, NodeStats] = field(default_factory=dict)
    events: int = 0
    first_at: float | None = None
    last_at: float | None = None
    since: float | None = None  # the range asked for, when folded from one
    until: float | None = None
    agents: AgentKpis = field(default_factory=AgentKpis)
    callbacks: CallbackKpis = field(default_factory=CallbackKpis)
    offers: OfferKpis = field(default_factory=OfferKpis)

    @property
    def containment(self) -> float | None:
        """Share of ended interactions that self-service finished; None before any ended."""
        return self.contained / self.ended if self.ended else None

    @property
    def routes_by_reason(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (reason, _queue), n in self.routes.items():
            out[reason] += n
        return dict(out)

    @property
    def routes_by_queue(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (_reason, queue), n in self.routes.items():
            out[queue] += n
        return dict(out)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; routes as a list (JSON keys cannot be pairs), biggest first."""
        return {
            "window": {"since": _iso(self.since), "until": _iso(self.until),
                       "first_event": _iso(self.first_at), "last_event": _iso(self.last_at), "events": self.events},
            "interactions": dict(self.interactions),
            "ended": self.ended,
            "contained": self.contained,
            "routed": self.routed,
            "abandoned": self.abandoned,
            "containment": None if self.containment is None else round(self.containment, 4),
            "routes": [{"reason": r, "queue": q, "count": n} for (r, q), n in _biggest(self.routes)],
            "routes_by_reason": dict(_biggest(self.routes_by_reason)),
            "rules": dict(_biggest(self.rules)),
            "agent_connects": self.agent_connects,
            "queue_abandons": self.queue_abandons,
            "crm": {"ok": self.crm_ok, "unavailable": self.crm_unavailable,
                    "latency_ms": {"buckets": [{"le": _le(b), "count": n} for b, n in self.crm_latency_ms.cumulative()],
                                   "sum": round(self.crm_latency_ms.sum, 3), "count": self.crm_latency_ms.count}},
            "nodes": {node: {"entries": s.entries, "dropoffs": s.dropoffs, "no_input": s.no_input,
                             "no_match": s.no_match} for node, s in sorted(self.nodes.items())},
            "agents": self.agents.to_dict(),
            "callbacks": self.callbacks.to_dict(),
            **self.offers.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_text(self) -> str:
        """The report a person reads (``ivr report``): totals first, then where callers went and left."""
        return "\n".join(_report(self)) + "\n"


@dataclass
class _Interaction:
    """What the accumulator must remember of one interaction to settle its outcome."""

    outcome: str | None = None
    decided: bool = False  # a route_decided was seen: it overrules route_chosen
    provisional: tuple[str, str] | None = None  # a route counted from route_chosen alone
    agents: set[str] = field(default_factory=set)


class KpiAccumulator:
    """Live KPIs: feed it every stored event with :meth:`add`, read :meth:`snapshot`.

    Not thread-safe; it lives on the event loop with the store it meters.
    """

    def __init__(self, *, max_interactions: int = MAX_TRACKED_INTERACTIONS,
                 fcr_window_s: float = DEFAULT_FCR_WINDOW_S, clock: Callable[[], float] | None = None) -> None:
        self._max = max_interactions
        self._agents = AgentStats(fcr_window_s=fcr_window_s, clock=clock, label=_label, max_customers=max_interactions)
        self._callbacks = CallbackStats()
        self._offers = OfferStats()
        self._open: OrderedDict[str, _Interaction] = OrderedDict()
        self._channels: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self._routes: Counter[tuple[str, str]] = Counter()
        self._rules: Counter[str] = Counter()
        self._nodes: dict[str, NodeStats] = {}
        self._agent_connects = 0
        self._queue_abandons = 0
        self._crm: Counter[str] = Counter()
        self._latency = Histogram.empty()
        self._events = 0
        self._first: float | None = None
        self._last: float | None = None

    def add(self, key: str, event: StampedEvent) -> None:
        """Count one stored event. ``key`` (the customer) is not a KPI dimension: no personal data in
        metrics; the agent numbers hold it in memory for the first-contact-resolution window only.
        Staff reading journeys (the audit trail) is not a customer interaction: not counted."""
        if event.channel == E.STAFF:
            return
        self._events += 1
        self._first = event.at if self._first is None else min(self._first, event.at)
        self._last = event.at if self._last is None else max(self._last, event.at)
        new = event.interaction not in self._open
        state = self._state(event)
        data = event.data if isinstance(event.data, dict) else {}
        if new:
            self._agents.started(key, event)
        self._agents.add(key, event, data)
        self._callbacks.add(event, data)
        self._offers.add(event, data)
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, state, data)

    def look_ahead(self, key: str, event: StampedEvent) -> None:
        """An event after the report's range: it may only show that a contact in the range was repeated."""
        if event.interaction not in self._open:
            self._agents.started(key, event)

    def snapshot(self, *, since: float | None = None, until: float | None = None,
                 horizon: float | None = None) -> Kpis:
        return Kpis(
            interactions=dict(self._channels), ended=sum(self._outcomes.values()),
            contained=self._outcomes[CONTAINED], routed=self._outcomes[ROUTED], abandoned=self._outcomes[ABANDONED],
            routes=dict(self._routes), rules=dict(self._rules), agent_connects=self._agent_connects,
            queue_abandons=self._queue_abandons, crm_ok=self._crm["ok"], crm_unavailable=self._crm["unavailable"],
            crm_latency_ms=self._latency, nodes=dict(self._nodes), events=self._events, first_at=self._first,
            last_at=self._last, since=since, until=until, agents=self._agents.snapshot(horizon),
            callbacks=self._callbacks.snapshot(), offers=self._offers.snapshot())

    # -- per event type ---------------------------------------------------------------------

    def _state(self, event: StampedEvent) -> _Interaction:
        state = self._open.get(event.interaction)
        if state is not None:
            self._open.move_to_end(event.interaction)
            return state
        self._channels[_capped(self._channels, event.channel)] += 1
        state = self._open[event.interaction] = _Interaction()
        if len(self._open) > self._max:
            self._open.popitem(last=False)
        return state

    def _settle(self, state: _Interaction, outcome: str) -> None:
        """Move the interaction to ``outcome``; abandoned is final."""
        if state.outcome == outcome or state.outcome == ABANDONED:
            return
        if state.outcome is not None:
            self._outcomes[state.outcome] -= 1
        state.outcome = outcome
        self._outcomes[outcome] += 1

    def _node(self, data: Mapping[str, Any], **increments: int) -> None:
        node = _capped(self._nodes, _label(data.get("node")))
        stats = self._nodes.get(node, NodeStats())
        self._nodes[node] = replace(stats, **{k: getattr(stats, k) + v for k, v in increments.items()})

    def _on_node_entered(self, _state: _Interaction, data: Mapping[str, Any]) -> None:
        self._node(data, entries=1)

    def _on_no_input(self, _state: _Interaction, data: Mapping[str, Any]) -> None:
        self._node(data, no_input=1)

    def _on_input_invalid(self, _state: _Interaction, data: Mapping[str, Any]) -> None:
        self._node(data, no_match=1)

    def _on_hangup(self, state: _Interaction, data: Mapping[str, Any]) -> None:
        if data.get("by") == "caller":
            self._node(data, dropoffs=1)
            self._settle(state, ABANDONED)
        elif state.outcome is None:
            self._settle(state, CONTAINED)

    def _on_route_decided(self, state: _Interaction, data: Mapping[str, Any]) -> None:
        if data.get("transfer"):  # the rules' word on an agent's transfer: the same call, not a new route
            return
        if state.provisional is not None:  # the router's word replaces the menu's
            self._routes[state.provisional] -= 1
            if not self._routes[state.provisional]:
                del self._routes[state.provisional]
            state.provisional = None
        state.decided = True
        for rule in data.get("rules") or ():
            self._rules[_capped(self._rules, _label(rule))] += 1
        if data.get("kind", "queue") == "queue":
            self._routes[self._route_key(data)] += 1
            self._settle(state, ROUTED)
        else:
            self._settle(state, CONTAINED)

    def _on_route_chosen(self, state: _Interaction, data: Mapping[str, Any]) -> None:
        if state.decided or state.outcome is not None:
            return
        state.provisional = self._route_key(data)
        self._routes[state.provisional] += 1
        self._settle(state, ROUTED)

    def _route_key(self, data: Mapping[str, Any]) -> tuple[str, str]:
        key = (_label(data.get("reason")), _label(data.get("queue")))
        if key in self._routes or len(self._routes) < MAX_LABEL_VALUES:
            return key
        return (OTHER, OTHER)

    def _on_agent_connected(self, state: _Interaction, data: Mapping[str, Any]) -> None:
        # AMI reports one answer twice (AgentConnect and DialEnd): one agent counts once a call.
        agent = _label(data.get("agent"))
        if agent in state.agents:
            return
        state.agents.add(agent)
        self._agent_connects += 1
        self._settle(state, ROUTED)

    def _on_queue_abandoned(self, state: _Interaction, _data: Mapping[str, Any]) -> None:
        self._queue_abandons += 1
        self._settle(state, ABANDONED)

    def _on_caller_identified(self, _state: _Interaction, data: Mapping[str, Any]) -> None:
        self._crm_lookup("ok", data)

    def _on_crm_unavailable(self, _state: _Interaction, data: Mapping[str, Any]) -> None:
        self._crm_lookup("unavailable", data)

    def _crm_lookup(self, status: str, data: Mapping[str, Any]) -> None:
        self._crm[status] += 1
        ms = data.get("crm_ms")
        if isinstance(ms, (int, float)) and not isinstance(ms, bool) and math.isfinite(ms) and ms >= 0:
            self._latency = self._latency.observe(float(ms))


_HANDLERS = {
    E.NODE_ENTERED: KpiAccumulator._on_node_entered,
    E.NO_INPUT: KpiAccumulator._on_no_input,
    E.INPUT_INVALID: KpiAccumulator._on_input_invalid,
    E.HANGUP: KpiAccumulator._on_hangup,
    E.ROUTE_DECIDED: KpiAccumulator._on_route_decided,
    E.ROUTE_CHOSEN: KpiAccumulator._on_route_chosen,
    E.AGENT_CONNECTED: KpiAccumulator._on_agent_connected,
    E.QUEUE_ABANDONED: KpiAccumulator._on_queue_abandoned,
    E.CALLER_IDENTIFIED: KpiAccumulator._on_caller_identified,
    E.CRM_UNAVAILABLE: KpiAccumulator._on_crm_unavailable,
}


def fold(events: Iterable[tuple[str, StampedEvent]], *, since: float | None = None,
         until: float | None = None, later: Iterable[tuple[str, StampedEvent]] = (),
         fcr_window_s: float = DEFAULT_FCR_WINDOW_S, horizon: float | None = None) -> Kpis:
    """The KPIs of ``events`` (``(key, event)``, oldest first, as ``JourneyStore.between`` gives them).

    ``later`` are the events after the range, up to ``horizon`` (at most the end of the range
    plus the FCR window, and never after now): they count for nothing but to show that a
    contact in the range was repeated. Contacts whose window reaches past ``horizon`` are
    reported as pending."""
    acc = KpiAccumulator(max_interactions=MAX_TRACKED_INTERACTIONS * 10, fcr_window_s=fcr_window_s)
    for key, event in events:
        acc.add(key, event)
    for key, event in later:
        acc.look_ahead(key, event)
    return acc.snapshot(since=since, until=until, horizon=horizon if horizon is not None else until)


def _label(value: object) -> str:
    """A dimension value as bounded text: stored data is whatever JSON an old version wrote."""
    if value is None or value == "":
        return "-"
    return str(value)[:MAX_LABEL_CHARS]


def _capped(seen: Mapping[str, Any], value: str) -> str:
    return value if value in seen or len(seen) < MAX_LABEL_VALUES else OTHER


def _biggest(counts: Mapping[Any, int]) -> list[tuple[Any, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))


def _iso(at: float | None) -> str | None:
    if at is None or not math.isfinite(at):
        return None
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="seconds")


def _le(bound: float) -> float | str:
    return "+Inf" if math.isinf(bound) else bound


# -- the text report -----------------------------------------------------------------------


def _report(k: Kpis) -> list[str]:
    # Without a range (live counters), the events themselves say what period this is.
    window = f"{_iso(k.since) or _iso(k.first_at) or '-'} to {_iso(k.until) or _iso(k.last_at) or '-'}"
    lines = [f"ivr report: {window} (UTC), {k.events:,} events", ""]
    channels = ", ".join(f"{ch} {n:,}" for ch, n in _biggest(k.interactions)) or "none"
    lines.append(f"Interactions      {sum(k.interactions.values()):>8,}   {channels}")
    lines.append(f"Ended             {k.ended:>8,}")
    lines.append(f"  self-service    {k.contained:>8,}   {_pct(k.contained, k.ended)} contained")
    lines.append(f"  routed          {k.routed:>8,}   {_pct(k.routed, k.ended)}"
                 " (sent to a person and did not give up waiting)")
    lines.append(f"  abandoned       {k.abandoned:>8,}   {_pct(k.abandoned, k.ended)}"
                 f" (of them {k.queue_abandons:,} gave up waiting in a queue)")
    lines.append(f"Agent connects    {k.agent_connects:>8,}")
    lookups = k.crm_ok + k.crm_unavailable
    lines.append(f"CRM lookups       {lookups:>8,}   ok {k.crm_ok:,}, unavailable {k.crm_unavailable:,}"
                 f" ({_pct(k.crm_unavailable, lookups)})")
    if k.crm_latency_ms.count:
        p50, p95 = k.crm_latency_ms.quantile_bound(0.5), k.crm_latency_ms.quantile_bound(0.95)
        lines.append(f"  latency         p50 <= {_ms(p50)}, p95 <= {_ms(p95)}, "
                     f"mean {k.crm_latency_ms.sum / k.crm_latency_ms.count:.0f} ms")
    sent = sum(k.routes.values())
    lines += _table(f"Routes by reason: {sent:,} sent to a queue, whatever happened next (the abandoned included)"
                    if sent else "Routes by reason", ["reason", "queue", "calls"],
                    [[r, q, f"{n:,}"] for (r, q), n in _biggest(k.routes)])
    lines += _table("Routing rules applied", ["rule", "calls"], [[r, f"{n:,}"] for r, n in _biggest(k.rules)])
    lines += _agent_tables(k.agents)
    cb = k.callbacks
    if cb.requested_total:
        by = ", ".join(f"{ch} {n:,}" for ch, n in _biggest(cb.requested))
        lines += _table(f"Callbacks: {cb.requested_total:,} asked for ({by}); request to conversation "
                        f"{_secs(cb.mean_wait_s)} on average", ["outcome", "callbacks"],
                        [[o, f"{cb.finished.get(o, 0):,}"] for o in OUTCOMES])
    lines += _offer_tables(k.offers)
    funnel = sorted(k.nodes.items(), key=lambda item: (-item[1].entries, item[0]))
    lines += _table("Menu funnel", ["node", "entries", "drop-offs", "no input", "no match"],
                    [[node, f"{s.entries:,}", f"{s.dropoffs:,} ({_pct(s.dropoffs, s.entries)})",
                      f"{s.no_input:,}", f"{s.no_match:,}"] for node, s in funnel])
    return lines


def _agent_tables(a: AgentKpis) -> list[str]:
    header = ["", "calls", "AHT", "answer", "transfers/call", "FCR"]
    hours = f"{a.fcr_window_s / 3600:g} h"
    lines: list[str] = []
    for title, index in (("Agents by queue", 0), ("Agents by route reason", 1)):
        rows = [[name, f"{s.calls:,}", _secs(s.aht_s), _secs(s.answer_s),
                 "-" if s.transfers_per_call is None else f"{s.transfers_per_call:.2f}",
                 "-" if s.fcr is None else f"{100 * s.fcr:.1f}% of {s.fcr_resolved + s.fcr_repeat:,}"]
                for name, s in sorted(a.by(index).items(), key=lambda item: (-item[1].calls, item[0]))]
        lines += _table(f"{title} (AHT: talk time per agent part; answer: queue wait; FCR: no new contact"
                        f" within {hours}; {a.fcr_pending:,} still inside it)" if rows else title,
                        [title.split()[-1] if index == 0 else "reason", *header[1:]], rows)
    return lines


def _offer_tables(o: OfferKpis) -> list[str]:
    offers = sorted(o.offers.items(), key=lambda item: (-item[1].presented, item[0]))
    lines = _table("Offers", ["offer", "presented", "accepted", "declined", "ignored", "conversion"],
                   [[code, f"{c.presented:,}", f"{c.accepted:,}", f"{c.declined:,}", f"{c.ignored:,}",
                     _pct(c.accepted, c.presented)] for code, c in offers])
    channels = sorted({ch for by in o.topics.values() for ch in by})
    topics = sorted(o.topics.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    return lines + _table("Topics by channel (interactions)", ["topic", *channels],
                          [[t, *(f"{by.get(ch, 0):,}" for ch in channels)] for t, by in topics])


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def _table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return ["", f"{title}: none"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        # The first column is text (left), the others numbers (right).
        return "  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                                enumerate(zip(cells, widths, strict=True))).rstrip()

    return ["", title, line(header), *(line(r) for r in rows)]


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _ms(bound: float | None) -> str:
    return "-" if bound is None else ("more than the last bucket" if math.isinf(bound) else f"{bound:g} ms")
