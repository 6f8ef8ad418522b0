"""Drive the call-flow engine on a voice call, over either driver: the engine decides, this module only acts.

Each engine action becomes channel commands (:class:`~ivr.voice.ports.VoiceChannel`):
Play -> prompts, Collect -> keys or speech, RunAction -> the ActionService, RouteToQueue /
HangUp -> channel variables the dialplan acts on. Every journey event the session records
is stamped and stored before the call leaves the controller, the hangup included.

Speech: when a Collect lists spoken keywords and the call carries audio (ARI), the flow
listens from the first prompt on; speech stops the prompt (barge-in) and its transcript
and confidence go to the journey. A recogniser that is down, or two answers in a row it
is not sure of, make the flow say so and take keys only for that menu: the keys work
throughout.
"""

from __future__ import annotations

import asyncio
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
from ivr.flow.events import ActionResult, Digits, Event, Hangup, Speech, Started, Timeout
from ivr.flow.ports import CurrentTree
from ivr.journey.errors import JourneyError
from ivr.journey.events import (
    CALL_STARTED,
    CALLER_IDENTIFIED,
    ROUTE_DECIDED,
    SPEECH_HEARD,
    SPEECH_UNAVAILABLE,
    VOICE,
)
from ivr.journey.ports import JourneySink, StampedEvent
from ivr.journey.tokens import ContextClaim
from ivr.routing.rules import RouteDecision
from ivr.voice import channel_vars as cv
from ivr.voice.agent_events import AgentEventRecorder, RoutedCall
from ivr.voice.ports import SPOKEN, CallEnded, ChannelFailed, ContextTokens, Router, VoiceChannel
from ivr.voice.speaker import Speaker
from ivr.voice.speech.listening import Listening, open_listening
from ivr.voice.speech.notices import KEYS_NOTICE, LOW_CONFIDENCE_NOTICE, notice
from ivr.voice.speech.recogniser import Heard, Recogniser, RecogniserDown

log = logging.getLogger(__name__)

ALL_KEYS = "0123456789*#"
CHANNEL = VOICE

Clock = Callable[[], dt.datetime]
JOURNEY_WINDOW_S = 7 * 86400
#: Answers the recogniser is unsure of, on one menu, before that menu takes keys only.
MAX_SPEECH_MISSES = 2


class EngineFlow:
    """One instance serves every call; per-call state lives in :class:`_Call`.

    Without ``lookup``, ``router`` or ``tokens`` the call still runs: generic menu, the
    queue the menu asked for, no token. That is also what a caller gets when one of them
    fails during the call.
    """

    def __init__(self, trees: CurrentTree, speaker: Speaker, actions: ActionService, journey: JourneySink,
                 clock: Clock | None = None, *, lookup: CallerLookup | None = None, router: Router | None = None,
                 tokens: ContextTokens | None = None, agent_events: AgentEventRecorder | None = None,
                 identifier: AccountIdentifier | None = None, journey_window_s: float = JOURNEY_WINDOW_S,
                 recogniser: Recogniser | None = None, speech_languages: frozenset[str] = frozenset()) -> None:
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
        self.recogniser = recogniser
        self.speech_languages = speech_languages  # what the model understands; other calls take keys only

    async def __call__(self, channel: VoiceChannel) -> None:
        call = _Call(self, channel)
        await call.run()


class _Call:
    def __init__(self, flow: EngineFlow, channel: VoiceChannel) -> None:
        self.flow = flow
        self.channel = channel
        info = channel.info
        self.call_id = info.call_id
        self.dnis = clean_caller_field(info.dnis)
        self.started_at = time.time()
        self.e164: str | None = None
        self.crm_status = NOT_ASKED
        self.customer: dict[str, Any] = {}
        self.context = CallerContext()
        self.journey_key = f"call:{self.call_id}"
        self.path: list[str] = []
        self.pending: list[StampedEvent] = []
        self._writes: asyncio.Future[None] | None = None  # the last journey write in flight (_write_behind)
        # Pinned for the whole call: a reload never changes a call in progress.
        self.tree = flow.trees.current()
        self._session: Session | None = None
        # Spoken input: off for the rest of the call once the recogniser failed; per menu after misses.
        self.speech_off = channel.audio() is None or flow.recogniser is None
        self.speech_misses: dict[str, int] = {}
        self.keys_only: set[str] = set()
        self.last_input_spoken = ""
        self.misses_due: list[str] = []
        self.typeahead = ""

    async def _identify(self) -> None:
        """Look the caller up before anything is played; a slow or dead CRM means a generic menu."""
        info = self.channel.info
        start = await self.flow.callers.start(info.caller_number, dnis=self.dnis, caller_name=info.caller_name,
                                              fallback_key=f"call:{self.call_id}", node=info.asterisk)
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
        context = CallerContext(customer=fields, caller=self.context.caller, dnis=self.dnis, now=self.context.now,
                                queue=self.context.queue, queues=self.context.queues)
        self._begin(CallerStart(context, journey_key, self.e164, "found", (), MappingProxyType(dict(fields))))

    def _note(self, kind: str, data: dict[str, Any]) -> None:
        self.pending.append(StampedEvent(time.time(), CHANNEL, self.call_id, kind, data))

    async def run(self) -> None:
        await self._identify()
        self._note(CALL_STARTED, {"driver": self.channel.info.driver, "dnis": self.dnis or ""})
        self._session = Session(self.tree, self.context, channel=CHANNEL)
        try:
            await self.channel.answer()
            caller = self.context.caller
            # Operators read this in the Asterisk log; the caller ID travels as one quoted argument.
            await self.channel.note(
                f"ivr: call {self.call_id} from {caller.get('name', '')} <{caller.get('number', '')}> "
                f"to {self.dnis}, menu version {self.tree.version}")
            await self.channel.set_variable("CHANNEL(language)", self.session.language)
            actions = self.session.handle(Started(self.dnis))
            self._write_behind()
            while True:
                event = await self._perform(actions)
                if event is None:
                    break
                actions = self.session.handle(event)
                self._write_behind()  # the next prompt does not wait on the store's commit
        except CallEnded:
            if not self.session.finished:
                self.session.handle(Hangup())
            raise
        finally:
            await self._flush()

    async def _perform(self, actions: Sequence[Action]) -> Event | None:
        """Carry out one turn's actions; return the event that answers it, or None at the end."""
        listening = await self._listen_for(actions)
        try:
            return await self._perform_with(actions, listening)
        finally:
            if listening is not None:
                await listening.close()

    async def _perform_with(self, actions: Sequence[Action], listening: Listening | None) -> Event | None:
        pressed, self.typeahead = self.typeahead, ""
        barge_in = listening.interrupt if listening is not None else None
        for i, action in enumerate(actions):
            if isinstance(action, Play):
                if pressed:
                    continue  # the caller already answered: skip the rest of the prompt
                escape = _escape_for(actions[i + 1:])
                pressed = await self.flow.speaker.play(self.channel, action, escape, barge_in)
            elif isinstance(action, Collect):
                if listening is not None:
                    return await self._collect_spoken(action, pressed, listening)
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

    # -- speech ------------------------------------------------------------------------------
    async def _listen_for(self, actions: Sequence[Action]) -> Listening | None:
        """Start listening before the prompt when this turn ends in a Collect with spoken keywords."""
        collect = next((a for a in actions if isinstance(a, Collect)), None)
        if collect is None or not collect.grammar or self.speech_off or self.flow.recogniser is None:
            return None
        if self.session_language not in self.flow.speech_languages:
            return None
        if collect.node in self.misses_due:
            self.misses_due.remove(collect.node)
            await self._speech_unavailable(collect.node, "the recogniser was unsure twice", LOW_CONFIDENCE_NOTICE,
                                           whole_call=False)
        if collect.node in self.keys_only:
            return None
        audio = self.channel.audio()
        if audio is None:
            return None
        try:
            return await open_listening(self.flow.recogniser, audio, collect.grammar, collect.end_of_speech_s)
        except (RecogniserDown, ChannelFailed) as exc:
            if isinstance(exc, CallEnded):
                raise
            await self._speech_unavailable(collect.node, str(exc), KEYS_NOTICE, whole_call=True)
            return None

    async def _collect_spoken(self, collect: Collect, first: str, listening: Listening) -> Event:
        """Keys or speech, whichever comes first; a recogniser failure falls back to keys at once."""
        if not first:
            first = await self.channel.wait_for_digit(int(collect.timeout_s * 1000), listening.interrupt)
        if first != SPOKEN:
            return await self._collect(collect, first) if first else Timeout()
        try:
            heard = await listening.result()
        except RecogniserDown as exc:
            await self._speech_unavailable(collect.node, str(exc), KEYS_NOTICE, whole_call=True)
            first, self.typeahead = self.typeahead, ""
            return await self._collect(collect, first)
        return await self._spoken(collect, heard, listening.speech_started)

    async def _spoken(self, collect: Collect, heard: Heard, barge_in: bool) -> Event:
        decided_ms = None
        if heard.speech_ended_at is not None:  # the branch is taken next, within the same loop turn
            decided_ms = round((asyncio.get_running_loop().time() - heard.speech_ended_at) * 1000)
        self._note(SPEECH_HEARD, {"node": collect.node, "text": heard.text, "confidence": round(heard.confidence, 3),
                                  "from_partial": heard.from_partial, "barge_in": barge_in, "decided_ms": decided_ms})
        self.last_input_spoken = collect.node
        return Speech(heard.text, heard.confidence)

    async def _speech_unavailable(self, node: str, reason: str, table: dict[str, str], *, whole_call: bool) -> None:
        log.warning("call %s: spoken input off (%s): %s", self.call_id, "call" if whole_call else node, reason)
        if whole_call:
            self.speech_off = True
        else:
            self.keys_only.add(node)
        self._note(SPEECH_UNAVAILABLE, {"node": node, "reason": reason})
        language = self.session_language
        # A key pressed during the notice is the caller's answer to the menu that follows.
        self.typeahead = await self.flow.speaker.play(
            self.channel, Play((Text(notice(table, language)),), "speech.keys_only", language), ALL_KEYS)

    def _count_miss(self, node: str) -> bool:
        """A spoken answer on ``node`` was not understood; True once that menu should take keys only."""
        self.speech_misses[node] = self.speech_misses.get(node, 0) + 1
        return self.speech_misses[node] >= MAX_SPEECH_MISSES and node not in self.keys_only

    async def _collect(self, collect: Collect, first: str) -> Event:
        self.last_input_spoken = ""
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
        except JourneyError as exc:  # the store is away: the agent gets the call without the context
            log.error("call %s: no context token for the agent: %s", self.call_id, exc)
            return None
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
        """Journal everything so far and wait until it is written: before a token is issued
        (its journey must hold this call's steps), before the caller becomes someone else,
        at the end."""
        stamped = self._drain_events()
        if self._writes is not None:
            writes, self._writes = self._writes, None
            await writes
        if stamped:
            await self.flow.journey.append(self.journey_key, stamped)

    def _write_behind(self) -> None:
        """Journal this turn's events without holding up the caller. Awaited, the write put
        the store's commit between a key and the next prompt: under load that was most of
        the time from a key to the prompt (bench/RESULTS.md, issue 17). A call's batches are
        still written one after another, in order; :meth:`_flush` waits for them."""
        stamped = self._drain_events()
        if stamped:
            self._writes = asyncio.ensure_future(self._write_after(self._writes, self.journey_key, stamped))

    async def _write_after(self, before: asyncio.Future[None] | None, key: str, stamped: list[StampedEvent]) -> None:
        if before is not None:
            await before  # never raises: see below
        try:
            await self.flow.journey.append(key, stamped)
        except Exception:  # noqa: BLE001 - the spool took what the store could not; this is a bug to see
            log.exception("call %s: %d journey events could not be written", self.call_id, len(stamped))

    def _drain_events(self) -> list[StampedEvent]:
        """This turn's journey events, stamped; the call's path and misses follow them."""
        events = self._session.drain_journey() if self._session is not None else []
        at = time.time()
        for kind, data in self.channel.take_notes():
            self._note(kind, dict(data))
        stamped, self.pending = self.pending, []
        for ev in events:
            if ev.type == J.NODE_ENTERED:
                self.path.append(str(ev.data.get("node", "")))
            elif ev.type == J.INPUT_INVALID and self.last_input_spoken == ev.data.get("node"):
                if self._count_miss(self.last_input_spoken):
                    self.misses_due.append(self.last_input_spoken)
            stamped.append(StampedEvent(at, CHANNEL, self.call_id, ev.type, dict(ev.data)))
        return stamped


def _escape_for(rest: Sequence[Action]) -> str:
    """Keys that may interrupt a prompt: any key when input follows (a wrong key is a
    nomatch the engine handles), none otherwise."""
    for action in rest:
        if isinstance(action, Collect):
            return ALL_KEYS
        if not isinstance(action, Play):
            return ""
    return ""
