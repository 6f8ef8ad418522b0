"""What a real caller from a number would get, for the admin tools: the same start and routing.

``ivr simulate --from NUMBER`` must show what a call from that number hears and where it
goes, so it uses the controller's own pieces: the configured CRM behind the same
:class:`~ivr.crm.lookup.CrmLookup` and :class:`~ivr.crm.session_start.CallerSessions`, and
the configured routing rules through the same pure :func:`ivr.routing.rules.decide` the
controller's :class:`~ivr.routing.service.RoutingService` calls.
Only two things differ from a call, on purpose: named actions run offline (a simulation
never changes a customer in the CRM), and the journey is not read (the last-agent rule
sees no earlier call), which the routing line says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ivr.composition import load_routing_config, open_directory
from ivr.crm.lookup import CrmLookup
from ivr.crm.numbers import normalise
from ivr.crm.session_start import CallerSessions, CallerStart
from ivr.errors import IvrError
from ivr.flow.engine import Outcome
from ivr.routing.rules import RouteDecision, RouteRequest, RoutingConfig, RoutingInvalid, decide
from ivr.settings import Settings
from ivr.tools.diff import CallerProfile, Destination, Router

#: A person running a tool waits longer than a caller would; a CRM slower than this is "unavailable".
TOOL_CRM_BUDGET_S = 2.0


@dataclass(frozen=True)
class Routed:
    """The routing rules' decision for a simulated session that asked for a person."""

    decision: RouteDecision
    journey_read: bool = False

    def to_text(self) -> str:
        d = self.decision
        if d.kind == "hangup":
            head = f"turned away: {d.reason}"
        else:
            first = f", {d.agent_first} rung first" if d.agent_first else ""
            head = f"routed to queue {d.queue} (priority {d.priority}{first}): {d.reason}"
        rules = f"; rules: {', '.join(d.rules)}" if d.rules else ""
        note = "" if self.journey_read else " (journey not read: no last-agent rule)"
        return f"[routing] {head}{rules}{note}"

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {"kind": d.kind, "queue": d.queue, "priority": d.priority, "reason": d.reason,
                "rules": list(d.rules), "agent_first": d.agent_first, "journey_read": self.journey_read}


async def start_as_caller(settings: Settings, number: str, dnis: str) -> CallerStart:
    """The caller's start exactly as the controller makes it, from the configured CRM."""
    directory = open_directory(settings)
    try:
        lookup = CrmLookup(directory, budget_s=max(settings.crm.budget_ms / 1000, TOOL_CRM_BUDGET_S),
                           default_region=settings.crm.default_region)
        return await CallerSessions(lookup).start(number, dnis=dnis, fallback_key=f"simulated:{number}")
    finally:
        await directory.aclose()


def route_as_call(settings: Settings, outcome: Outcome | None, start: CallerStart, dnis: str) -> Routed | None:
    """The configured rules' decision, now, for a session that ended asking for a queue; else None."""
    if outcome is None or outcome.kind != "routed" or outcome.queue is None:
        return None
    return Routed(_decide(_rules(settings), outcome.queue, outcome.priority or 0, outcome.reason or "",
                          start.customer, start.number, dnis, start.status, dt.datetime.now(dt.UTC)))


def rules_router(settings: Settings) -> Router:
    """The configured routing rules as ``ivr diff`` applies them to each profile's routes.

    The profile is the caller and its ``now`` the moment.
    """
    config = _rules(settings)

    def route(profile: CallerProfile, reached: Destination) -> Destination:
        context = profile.caller_context()
        customer = dict(context.customer)
        decision = _decide(config, reached.queue or "", reached.priority or 0, reached.reason or "", customer,
                           normalise(str(context.caller.get("number") or ""), settings.crm.default_region),
                           profile.dnis, "found" if customer else "unknown", _moment(context.now))
        if decision.kind == "hangup":
            return Destination("hung_up", reason=f"routing: {decision.reason}")
        rules = f" [rules: {', '.join(decision.rules)}]" if decision.rules else ""
        return Destination("routed", decision.queue, decision.priority, f"{decision.reason}{rules}")

    return route


def _rules(settings: Settings) -> RoutingConfig:
    try:
        return load_routing_config(settings)
    except RoutingInvalid as exc:
        raise IvrError(str(exc), hint="run `ivr validate` and fix the files it lists",
                       error_id=exc.error_id) from None


def _decide(config: RoutingConfig, queue: str, priority: int, reason: str, customer: Mapping[str, Any],
            number: str | None, dnis: str | None, crm_status: str, moment: dt.datetime) -> RouteDecision:
    """:func:`ivr.routing.rules.decide`, pure, as a call's router would ask it; the journey is not read."""
    return decide(config, RouteRequest(queue, priority, reason, customer, number, dnis, None, crm_status), moment)


def _moment(now: Mapping[str, Any]) -> dt.datetime:
    """The profile's ``now`` (date, hour, minute) as a local time; today at that hour without a date."""
    base = dt.datetime.now().astimezone()
    try:
        day = dt.date.fromisoformat(str(now["date"])) if now.get("date") else base.date()
    except ValueError:
        day = base.date()
    return base.replace(year=day.year, month=day.month, day=day.day, hour=int(now.get("hour", base.hour)),
                        minute=int(now.get("minute", 0)), second=0, microsecond=0)
