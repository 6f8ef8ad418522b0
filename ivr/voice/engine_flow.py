"""Drive the call-flow engine on a FastAGI call: the engine decides, this module only acts.

Each engine action becomes AGI commands: Play -> STREAM FILE / SAY *, Collect -> WAIT FOR
DIGIT, RunAction -> the ActionService, RouteToQueue / HangUp -> channel variables the
dialplan acts on. Every journey event the session records is stamped and stored before
the call leaves the controller, the hangup included.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from ivr.crm.ports import ActionService
from ivr.flow import journey as J
from ivr.flow.actions import Action, Collect, HangUp, Play, RouteToQueue, RunAction, SetVariable
from ivr.flow.context import CallerContext
from ivr.flow.engine import Session
from ivr.flow.events import Digits, Event, Hangup, Started, Timeout
from ivr.flow.store import TreeStore
from ivr.journey.ports import JourneySink, StampedEvent
from ivr.voice import channel_vars as cv
from ivr.voice.fastagi import AgiChannel, AgiHangup
from ivr.voice.speaker import Speaker

log = logging.getLogger(__name__)

ALL_KEYS = "0123456789*#"
MAX_CALLER_FIELD = 64
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")

Clock = Callable[[], dt.datetime]


def clean_caller_field(value: str) -> str:
    """Caller ID as the flow may see it: no control characters, bounded length."""
    return _UNSAFE.sub(" ", value).strip()[:MAX_CALLER_FIELD]


def now_fields(moment: dt.datetime) -> dict[str, Any]:
    return {"hour": moment.hour, "minute": moment.minute, "weekday": moment.weekday(),
            "date": moment.date().isoformat()}


class EngineFlow:
    """One instance serves every call; per-call state lives in :meth:`__call__`."""

    def __init__(self, trees: TreeStore, speaker: Speaker, actions: ActionService, journey: JourneySink,
                 clock: Clock | None = None) -> None:
        self.trees = trees
        self.speaker = speaker
        self.actions = actions
        self.journey = journey
        self.clock: Clock = clock or (lambda: dt.datetime.now().astimezone())

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
        caller = {"number": clean_caller_field(req.caller_number)}
        if req.caller_name:
            caller["name"] = clean_caller_field(req.caller_name)
        self.context = CallerContext(caller=caller, dnis=self.dnis, now=now_fields(flow.clock()))
        self.journey_key = caller["number"] or f"call:{self.call_id}"
        self.path: list[str] = []
        # Pinned for the whole call: a reload never changes a call in progress.
        self.tree = flow.trees.current()
        self.session = Session(self.tree, self.context, channel="voice")

    async def run(self) -> None:
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
                return await self.flow.actions.run(action.name, action.args, self.context,
                                                   interaction=self.call_id)
            elif isinstance(action, SetVariable):
                pass  # kept by the session for its templates; masked values never leave it
            elif isinstance(action, RouteToQueue):
                await self._finish(cv.RESULT_QUEUE, {
                    cv.QUEUE: action.queue, cv.QUEUE_PRIORITY: action.priority, cv.ROUTE_REASON: action.reason})
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

    async def _finish(self, result: str, variables: dict[str, object]) -> None:
        await self._flush()
        for name, value in variables.items():
            await self.channel.set_variable(name, value)
        await self.channel.set_variable(cv.PATH, ">".join(self.path))
        await self.channel.set_variable(cv.RESULT, result)

    async def _flush(self) -> None:
        events = self.session.drain_journey()
        if not events:
            return
        at = time.time()
        stamped = []
        for ev in events:
            if ev.type == J.NODE_ENTERED:
                self.path.append(str(ev.data.get("node", "")))
            stamped.append(StampedEvent(at, "voice", self.call_id, ev.type, dict(ev.data)))
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
