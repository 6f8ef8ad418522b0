"""Drive the call-flow engine on a FastAGI call: the engine decides, this module only acts.

Each engine action becomes AGI commands: Play -> STREAM FILE / SAY *, Collect -> WAIT FOR
DIGIT, RunAction -> the ActionService, RouteToQueue / HangUp -> channel variables the
dialplan acts on. Every journey event the session records is stamped and stored before
the call leaves the controller, the hangup included.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ivr.crm.identify import IDENTIFY_ACTION, AccountIdentifier
from ivr.crm.ports import ActionService, CallerLookup
from ivr.crm.session_start import NOT_ASKED, CallerSessions, CallerStart, clean_caller_field, local_now
from ivr.flow import journey as J
from ivr.flow.actions import Action, Collect, HangUp, Play, RouteToQueue, RunAction, SetVariable, Text
from ivr.flow.context import CallerContext
from ivr.flow.engine import Session
from ivr.flow.events import ActionResult, Digits, Event, Hangup, Started, Timeout
from ivr.flow.ports import CurrentTree
from ivr.journey.events import CALLER_IDENTIFIED, ROUTE_DECIDED, VOICE
from ivr.journey.ports import JourneySink, StampedEvent
from ivr.journey.tokens import ContextClaim
from ivr.routing.rules import RouteDecision
from ivr.voice import channel_vars as cv
from ivr.voice.agent_events import AgentEventRecorder, RoutedCall
from ivr.voice.fastagi import AgiChannel, AgiHangup
from ivr.voice.ports import ContextTokens, Router
from ivr.voice.speaker import Speaker

log = logging.getLogger(__name__)

ALL_KEYS = "0123456789*#"
CHANNEL = VOICE

Clock = Callable[[], dt.datetime]
JOURNEY_WINDOW_S = 7 * 86400


class EngineFlow:
    """One instance serves every call; per-call state lives in :class:`_Call`.

    Without ``lookup``, ``router`` or ``tokens`` the call still runs: generic menu, the
    queue the menu asked for, no token. That is also what a caller gets when one of them
    fails during the call.
    """

    def __init__(self, trees: CurrentTree, speaker: Speaker, actions: ActionService, journey: JourneySink,
                 clock: Clock | None = None, *, lookup: CallerLookup | None = None, router: Router | None = None,
                 tokens: ContextTokens | None = None, agent_events: AgentEventRecorder | None = None,
                 identifier: AccountIdentifier | None = None, journey_window_s: float = JOURNEY_WINDOW_S) -> None:
        self.trees = trees
        self.speaker = speaker
        self.actions = actions
        self.journey = journey
        self.clock: Clock = clock or local_now
        self.callers = CallerSessions(lookup, clock=self.clock)
        self.router = router
        self.tokens = tokens
        self.agent_events = agent_events
        self.identifier = identifier
        self.journey_window_s = journey_window_s

    async def __call__(self, channel: AgiChannel) -> None:
        call = _Call(self, channel)
        await call.run()


class _Call:
    def __init__(self, flow: EngineFlow, channel: AgiChannel) -> None:
        self.flow = flow
        self.channel = channel
        req = channel.request
        self.call_id = req.uniqueid
        self.dnis = clean_caller_field(req.arg(1) or req.extension)
        self.started_at = time.time()
        self.e164: str | None = None
        self.crm_status = NOT_ASKED
        self.customer: dict[str, Any] = {}
        self.context = CallerContext()
        self.journey_key = f"call:{self.call_id}"
        self.path: list[str] = []
        self.pending: list[StampedEvent] = []
        # Pinned for the whole call: a reload never changes a call in progress.
        self.tree = flow.trees.current()
        self._session: Session | None = None

    async def _identify(self) -> None:
        """Look the caller up before anything is played; a slow or dead CRM means a generic menu."""
        req = self.channel.request
        start = await self.flow.callers.start(req.caller_number, dnis=self.dnis, caller_name=req.caller_name,
                                              fallback_key=f"call:{self.call_id}")
        self._begin(start)
        for kind, data in start.events:
            self._note(kind, data)

    def _begin(self, start: CallerStart) -> None:
        self.crm_status, self.e164 = start.status, start.number
        self.customer = dict(start.customer)
        self.journey_key = start.journey_key
        self.context = start.context

    async def _identify_by_account(self, action: RunAction) -> ActionResult:
        """From now on this call belongs to the customer the account and PIN name."""
        assert self.flow.identifier is not None
        customer = await self.flow.identifier.identify(str(action.args.get("account", "")),
                                                       str(action.args.get("pin", "")))
        if customer is None:
            return ActionResult(action.name, False, {"error": "account and PIN do not match"})
        await self._flush()  # what happened so far stays with the number it happened under
        fields = customer.template_fields()
        self._become(fields, str(customer.id))
        self._note(CALLER_IDENTIFIED, {"by": "account", "customer": customer.id, "number": self.e164 or ""})
        # The menus from here on are this customer's, as if the CRM had known the number.
        return ActionResult(action.name, True, {"name": customer.name or "", "customer": customer.id},
                            customer=fields)

    async def _run_action(self, action: RunAction) -> ActionResult:
        result = await self.flow.actions.run(action.name, action.args, self.context, interaction=self.call_id)
        if result.customer is not None:  # the action changed the customer: routing sees them as they are now
            self._become(result.customer, self.journey_key)
        return result

    def _become(self, fields: Mapping[str, Any], journey_key: str) -> None:
        """From now on the call is this customer's, as the CRM holds them."""
        context = CallerContext(customer=fields, caller=self.context.caller, dnis=self.dnis, now=self.context.now)
        self._begin(CallerStart(context, journey_key, self.e164, "found", (), MappingProxyType(dict(fields))))

    def _note(self, kind: str, data: dict[str, Any]) -> None:
        self.pending.append(StampedEvent(time.time(), CHANNEL, self.call_id, kind, data))

    async def run(self) -> None:
        await self._identify()
        self._session = Session(self.tree, self.context, channel=CHANNEL)
        try:
            await self.channel.answer()
            caller = self.context.caller
            # Operators read this in the Asterisk log; the caller ID travels as one quoted argument.
            await self.channel.verbose(
                f"ivr: call {self.call_id} from {caller.get('name', '')} <{caller.get('number', '')}> "
                f"to {self.dnis}, menu version {self.tree.version}")
            await self.channel.set_variable("CHANNEL(language)", self.session.language)
            actions = self.session.handle(Started(self.dnis))
            await self._flush()
            while True:
                event = await self._perform(actions)
                if event is None:
                    break
                actions = self.session.handle(event)
                await self._flush()
        except AgiHangup:
            if not self.session.finished:
                self.session.handle(Hangup())
            raise
        finally:
            await self._flush()

    async def _perform(self, actions: Sequence[Action]) -> Event | None:
        """Carry out one turn's actions; return the event that answers it, or None at the end."""
        pressed = ""
        for i, action in enumerate(actions):
            if isinstance(action, Play):
                if pressed:
                    continue  # the caller already answered: skip the rest of the prompt
                escape = _escape_for(actions[i + 1:])
                pressed = await self.flow.speaker.play(self.channel, action, escape)
            elif isinstance(action, Collect):
                return await self._collect(action, pressed)
            elif isinstance(action, RunAction):
                if action.name == IDENTIFY_ACTION and self.flow.identifier is not None:
                    return await self._identify_by_account(action)
                return await self._run_action(action)
            elif isinstance(action, SetVariable):
                pass  # kept by the session for its templates; masked values never leave it
            elif isinstance(action, RouteToQueue):
                await self._route(action)
                return None
            elif isinstance(action, HangUp):
                await self._finish(cv.RESULT_HANGUP, {cv.ROUTE_REASON: action.reason})
                return None
        if self.session.finished:
            return None
        raise RuntimeError(f"engine turn ended without a wait: {actions!r}")

    async def _collect(self, collect: Collect, first: str) -> Event:
        digits = first
        if not digits:
            digits = await self.channel.wait_for_digit(int(collect.timeout_s * 1000))
            if not digits:
                return Timeout()
        while len(digits) < collect.max_digits:
            if collect.terminator and digits.endswith(collect.terminator):
                break
            more = await self.channel.wait_for_digit(int(collect.interdigit_timeout_s * 1000))
            if not more:
                break
            digits += more
        if collect.terminator and digits.endswith(collect.terminator) and collect.max_digits > 1:
            digits = digits[: -len(collect.terminator)]
        return Digits(digits)

    async def _route(self, action: RouteToQueue) -> None:
        decision = await self._decide(action)
        self._note(ROUTE_DECIDED, {"kind": decision.kind, "queue": decision.queue, "priority": decision.priority,
                                   "reason": decision.reason, "rules": list(decision.rules),
                                   "agent_first": decision.agent_first or ""})
        if decision.kind == "hangup":
            text = decision.announcement_for(self.session_language)
            if text:
                await self._flush()
                await self.flow.speaker.play(self.channel, Play((Text(text),), "routing.announcement",
                                                                self.session_language), "")
            await self._finish(cv.RESULT_HANGUP, {cv.ROUTE_REASON: decision.reason})
            return
        variables: dict[str, object] = {cv.QUEUE: decision.queue, cv.QUEUE_PRIORITY: decision.priority,
                                        cv.ROUTE_REASON: decision.reason}
        if decision.agent_first:
            variables[cv.AGENT] = decision.agent_first
            variables[cv.AGENT_TIMEOUT] = decision.agent_timeout_s
        await self._flush()  # the token's journey must already hold this call's steps
        token = await self._token(decision)
        if token:
            variables[cv.CONTEXT_TOKEN] = token
        if self.flow.agent_events is not None:
            self.flow.agent_events.track(self.call_id, RoutedCall(self.journey_key, CHANNEL, decision.queue))
        await self._finish(cv.RESULT_QUEUE, variables)

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the session starts once the caller is identified")
        return self._session

    @property
    def session_language(self) -> str:
        return self._session.language if self._session is not None else self.tree.languages[0]

    async def _decide(self, action: RouteToQueue) -> RouteDecision:
        if self.flow.router is None:
            return RouteDecision("queue", action.queue, action.priority, action.reason)
        return await self.flow.router.decide(
            queue=action.queue, priority=action.priority, reason=action.reason, customer=self.customer,
            caller_number=self.e164, dnis=self.dnis, journey_key=self.journey_key, crm_status=self.crm_status)

    async def _token(self, decision: RouteDecision) -> str | None:
        if self.flow.tokens is None:
            return None
        claim = ContextClaim(customer_key=self.journey_key, interaction=self.call_id, queue=decision.queue,
                             priority=decision.priority, route_reason=decision.reason, channel=CHANNEL,
                             journey_since=self.started_at - self.flow.journey_window_s)
        try:
            return await self.flow.tokens.issue(claim)
        except Exception:  # noqa: BLE001 - no token is better than no agent
            log.exception("call %s: could not issue a context token", self.call_id)
            return None

    async def _finish(self, result: str, variables: dict[str, object]) -> None:
        await self._flush()
        for name, value in variables.items():
            await self.channel.set_variable(name, value)
        await self.channel.set_variable(cv.PATH, ">".join(self.path))
        await self.channel.set_variable(cv.RESULT, result)

    async def _flush(self) -> None:
        events = self._session.drain_journey() if self._session is not None else []
        at = time.time()
        stamped, self.pending = self.pending, []
        for ev in events:
            if ev.type == J.NODE_ENTERED:
                self.path.append(str(ev.data.get("node", "")))
            stamped.append(StampedEvent(at, CHANNEL, self.call_id, ev.type, dict(ev.data)))
        if stamped:
            await self.flow.journey.append(self.journey_key, stamped)


def _escape_for(rest: Sequence[Action]) -> str:
    """Keys that may interrupt a prompt: any key when input follows (a wrong key is a
    nomatch the engine handles), none otherwise."""
    for action in rest:
        if isinstance(action, Collect):
            return ALL_KEYS
        if not isinstance(action, Play):
            return ""
    return ""
