"""Walk a tree as a caller would, without a phone: for the CLI, docs and tests.

Pure like the engine: keys go in, the transcript (what the caller would hear
or see, in order), the journey and the outcome come out. Named actions are run
by an :class:`ActionRunner`; :class:`DemoActionRunner` answers the demo tree's
actions from the caller context, so a simulation needs no CRM.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from ivr.flow.actions import Action, Collect, HangUp, Play, RouteToQueue, RunAction, SetVariable
from ivr.flow.context import CallerContext
from ivr.flow.engine import Outcome, Session
from ivr.flow.events import ActionResult, Digits, Event, Hangup, Speech, Started, Timeout
from ivr.flow.journey import JourneyEvent
from ivr.flow.model import TEXT_CHANNELS, VALID_KEYS, Tree
from ivr.flow.render_text import format_parts, render_screen

TIMEOUT_KEYS = frozenset({"", "T"})
HANGUP_KEY = "H"
#: Bound on engine turns, in case a runner keeps failing into a retry loop.
MAX_TURNS = 1000


class ActionRunner(Protocol):
    """Runs a named action for the simulator (the host's CRM adapter plays this role live)."""

    def run(self, name: str, args: Mapping[str, Any], context: CallerContext) -> ActionResult: ...


class DemoActionRunner:
    """Answers the demo tree's actions from the caller context; anything else fails."""

    def run(self, name: str, args: Mapping[str, Any], context: CallerContext) -> ActionResult:
        customer = context.customer
        if name == "balance":
            balance = customer.get("balance", Decimal("1250.00"))
            return ActionResult(name, True, {"balance": balance, "currency": customer.get("currency", "RUB")})
        if name in ("service_on", "service_off"):
            service = args.get("service")
            if not service:
                return ActionResult(name, False, {"error": "no service given"})
            return ActionResult(name, True, {"service": service, "enabled": name == "service_on"},
                                customer=_with_service(customer, str(service), name == "service_on"))
        if name == "callback":  # booked, nothing stored: the tree's "we will call you back" branch
            number = str(args.get("number") or context.caller.get("number") or "")
            return ActionResult(name, True, {"id": "cb-simulated", "number": number, "queue": args.get("queue", ""),
                                             "already": False, "scheduled": False, "opens": "",
                                             "position": context.queue.get("position", 1),
                                             "estimated_minutes": context.queue.get("estimated_minutes", 0)})
        return ActionResult(name, False, {"error": f"unknown action {name!r}"})


def _with_service(customer: Mapping[str, Any], service: str, on: bool) -> Mapping[str, Any] | None:
    """The customer after the switch, as a CRM would report them; None for no customer."""
    if not customer:
        return None
    services = set(customer.get("services") or ())
    services = services | {service} if on else services - {service}
    return {**customer, "services": sorted(services)}


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One thing that happened: ``say``/``screen`` output, caller ``input``, ``action``, ``route``, ``hangup``."""

    kind: str
    text: str


@dataclass(frozen=True)
class SimulationResult:
    transcript: tuple[TranscriptLine, ...]
    journey: tuple[JourneyEvent, ...]
    outcome: Outcome | None
    finished: bool
    unused_keys: tuple[str, ...] = field(default=())

    def to_json(self) -> str:
        data = {
            "finished": self.finished,
            "outcome": None if self.outcome is None else _outcome_dict(self.outcome),
            "transcript": [{"kind": line.kind, "text": line.text} for line in self.transcript],
            "journey": [event.to_dict() for event in self.journey],
            "unused_keys": list(self.unused_keys),
        }
        return json.dumps(data, ensure_ascii=False, indent=2, default=str)

    def to_text(self) -> str:
        lines = []
        for line in self.transcript:
            if line.kind == "screen":
                lines.append("+" + "-" * 40)
                lines.extend(f"| {row}" for row in line.text.splitlines())
                lines.append("+" + "-" * 40)
            elif line.kind == "input":
                lines.append(f"> {line.text}")
            elif line.kind == "say":
                lines.append(f"IVR: {line.text}")
            else:
                lines.append(f"[{line.kind}] {line.text}")
        if self.outcome is None:
            lines.append("[end] still waiting for input (no keys left)")
        else:
            lines.append(f"[end] {_outcome_text(self.outcome)}")
        return "\n".join(lines)


def _outcome_dict(outcome: Outcome) -> dict[str, Any]:
    return {k: getattr(outcome, k) for k in ("kind", "node", "queue", "priority", "reason")}


def _outcome_text(outcome: Outcome) -> str:
    if outcome.kind == "routed":
        return f"routed to queue {outcome.queue} (priority {outcome.priority}): {outcome.reason}"
    return f"{outcome.kind} at {outcome.node}" + (f" ({outcome.reason})" if outcome.reason else "")


def key_event(key: str) -> Event:
    """ "" or "T" is a timeout, "H" a hangup, keys 0-9*# are digits, anything else is speech."""
    if key in TIMEOUT_KEYS:
        return Timeout()
    if key == HANGUP_KEY:
        return Hangup()
    if all(c in VALID_KEYS for c in key):
        return Digits(key)
    return Speech(key)


def simulate(
    tree: Tree,
    context: CallerContext | Mapping[str, Any] | None,
    keys: Sequence[str],
    channel: str = "voice",
    dnis: str | None = None,
    *,
    runner: ActionRunner | None = None,
    language: str | None = None,
    entry: str | None = None,
) -> SimulationResult:
    """Run a whole call: start, then one key per input the tree waits for."""
    ctx = CallerContext.coerce(context)
    runner = runner or DemoActionRunner()
    session = Session(tree, ctx, channel=channel, language=language, entry=entry)
    text = channel in TEXT_CHANNELS
    transcript: list[TranscriptLine] = []
    journey: list[JourneyEvent] = []
    pending = list(keys)
    event: Event = Started(dnis)
    for _ in range(MAX_TURNS):
        actions = session.handle(event)
        journey.extend(session.drain_journey())
        _record(actions, transcript, text)
        if session.finished:
            break
        run = next((a for a in actions if isinstance(a, RunAction)), None)
        if run is not None:
            result = runner.run(run.name, run.args, ctx)
            transcript.append(TranscriptLine("action", f"{run.name} -> {'ok' if result.ok else 'failed'}"))
            event = result
            continue
        if not pending:
            break
        key = pending.pop(0)
        event = key_event(key)
        shown = "(timeout)" if isinstance(event, Timeout) else "(hangup)" if isinstance(event, Hangup) else key
        transcript.append(TranscriptLine("input", "*" * len(key) if _masked(actions) else shown))
    return SimulationResult(tuple(transcript), tuple(journey), session.outcome, session.finished, tuple(pending))


def _masked(actions: Sequence[Action]) -> bool:
    return any(isinstance(a, Collect) and a.masked for a in actions)


def _record(actions: Sequence[Action], transcript: list[TranscriptLine], text: bool) -> None:
    if text:
        screen = render_screen(actions)
        if screen:
            transcript.append(TranscriptLine("screen", screen))
    else:
        for action in actions:
            if isinstance(action, Play):
                transcript.append(TranscriptLine("say", format_parts(action.parts, sounds=True)))
    for action in actions:
        if isinstance(action, RouteToQueue):
            transcript.append(TranscriptLine("route", f"{action.queue} (priority {action.priority}): {action.reason}"))
        elif isinstance(action, HangUp):
            transcript.append(TranscriptLine("hangup", action.reason))
        elif isinstance(action, SetVariable) and not action.masked:
            transcript.append(TranscriptLine("stored", f"{action.name} = {action.value}"))


class DemoActions:
    """:class:`DemoActionRunner` behind the async ``ActionService`` port: the demo's actions
    for a real FastAGI call with no CRM (the dialplan twin bench, the wire tests)."""

    def __init__(self) -> None:
        self._runner = DemoActionRunner()

    async def run(self, name: str, args: Mapping[str, Any], context: CallerContext,
                  *, interaction: str) -> ActionResult:
        return self._runner.run(name, args, context)
