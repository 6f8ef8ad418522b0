"""What a real caller from a number would get, for the admin tools: the same start and routing.

``ivr simulate --from NUMBER`` must show what a call from that number hears and where it
goes, so it uses the controller's own pieces: the configured CRM behind the same
:class:`~ivr.crm.lookup.CrmLookup` and :class:`~ivr.crm.session_start.CallerSessions`, and
the configured routing rules behind the same :class:`~ivr.routing.service.RoutingService`.
Only two things differ from a call, on purpose: named actions run offline (a simulation
never changes a customer in the CRM), and the journey is not read (the last-agent rule
sees no earlier call), which the routing line says.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ivr.composition import load_routing_config, open_directory
from ivr.crm.lookup import CrmLookup
from ivr.crm.numbers import normalise
from ivr.crm.session_start import CallerSessions, CallerStart
from ivr.flow.engine import Outcome
from ivr.routing.rules import RouteDecision, RouteRequest, decide
from ivr.routing.service import RoutingService
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
        close = getattr(directory, "close", None)
        if close is not None and inspect.isawaitable(result := close()):
            await result


async def route_as_call(settings: Settings, outcome: Outcome | None, start: CallerStart,
                        dnis: str) -> Routed | None:
    """The configured rules' decision for a session that ended asking for a queue; else None."""
    if outcome is None or outcome.kind != "routed" or outcome.queue is None:
        return None
    config = load_routing_config(settings)
    service = RoutingService(lambda: config)
    decision = await service.decide(queue=outcome.queue, priority=outcome.priority or 0, reason=outcome.reason or "",
                                    customer=start.customer, caller_number=start.number, dnis=dnis,
                                    journey_key=start.journey_key, crm_status=start.status)
    return Routed(decision)


def rules_router(settings: Settings) -> Router:
    """The configured routing rules as ``ivr diff`` applies them to each profile's routes.

    Pure and synchronous (``ivr.routing.rules.decide``): the profile is the caller, its
    ``now`` the moment, and the journey is not read (no last-agent rule), as in simulate.
    """
    config = load_routing_config(settings)

    def route(profile: CallerProfile, reached: Destination) -> Destination:
        context = profile.caller_context()
        customer = dict(context.customer)
        request = RouteRequest(reached.queue or "", reached.priority or 0, reached.reason or "", customer,
                               normalise(str(context.caller.get("number") or ""), settings.crm.default_region),
                               profile.dnis, None, "found" if customer else "unknown")
        decision = decide(config, request, _moment(context.now))
        if decision.kind == "hangup":
            return Destination("hung_up", reason=f"routing: {decision.reason}")
        rules = f" [rules: {', '.join(decision.rules)}]" if decision.rules else ""
        return Destination("routed", decision.queue, decision.priority, f"{decision.reason}{rules}")

    return route


def _moment(now: Mapping[str, Any]) -> dt.datetime:
    """The profile's ``now`` (date, hour, minute) as a local time; today at that hour without a date."""
    base = dt.datetime.now().astimezone()
    try:
        day = dt.date.fromisoformat(str(now["date"])) if now.get("date") else base.date()
    except ValueError:
        day = base.date()
    return base.replace(year=day.year, month=day.month, day=day.day, hour=int(now.get("hour", base.hour)),
                        minute=int(now.get("minute", 0)), second=0, microsecond=0)
