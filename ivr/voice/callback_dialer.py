"""Keeps every waiting callback's place in ``app_queue`` and rings the customer when it comes up.

The place is a real queue entry: a Local channel pair the dialer originates,
``Local/<id>@ivr-callback-hold`` (the customer's side, ``;2``, silent until needed) and its
other half in ``ivr-callback-slot`` (``;1``) that waits in ``Queue()`` with the callback's
priority, inserted at the position its ``place_at`` earns among the entries there now
(``Queue()``'s ``position`` argument). When an agent takes the place, the dialplan alone
does the rest, so a controller that is down changes nothing: the agent hears a whisper
of who is being called, the held half is redirected to ring the customer, and every
step is written to AstDB (``ivr_callback/<id>`` = ``<attempt>:<status>``) and told by a
``UserEvent``.

This loop reconciles that with the durable records (:class:`ivr.callbacks.book.CallbackBook`)
once a second and on every ``IvrCallback`` event: a result in AstDB becomes the record's
next state and a journey event (written before the AstDB entry is removed, so a kill in
between repeats nothing: the record already says it); a waiting callback with no place
(new, due again after a retry, or lost with an Asterisk restart) gets one, in queue order;
a cancelled or expired one loses its place. A finished callback is never placed again.

In a queue whose policy says ``customer_first``, the dialer also rings the customer as soon
as their place is at the head of the queue (``Local/<id>@ivr-callback-ring`` into
``ivr-callback-joined``): once they answer they take the place over, so no agent waits on
a phone that is not picked up. An agent freed while it rings takes the place as usual and
is joined by the customer when they answer (dialplan/callbacks.conf).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ivr.callbacks.actions import CallbackConfirmations
from ivr.callbacks.book import CallbackBook
from ivr.callbacks.policy import CUSTOMER_FIRST, CallbackPolicy, QueuePolicy
from ivr.callbacks.record import (
    ABANDONED,
    COMPLETED,
    FAILED,
    RINGING,
    WAITING,
    Callback,
    order,
)
from ivr.journey.events import CALLBACK_ATTEMPTED, CALLBACK_CONNECTED, CALLBACK_FINISHED
from ivr.journey.lease import Lease
from ivr.journey.tokens import ContextClaim
from ivr.voice import channel_vars as cv
from ivr.voice.agent_events import AgentEventRecorder, RoutedCall, agent_name
from ivr.voice.queue_monitor import HOLD_CONTEXT, SLOT_CONTEXT, QueueEntry, QueueMonitor

RING_CONTEXT = "ivr-callback-ring"  # customer first: the ring leg's ;2 (dialplan/callbacks.conf)
JOINED_CONTEXT = "ivr-callback-joined"  # ... and its ;1 once the customer answered
#: What a customer rung first hears on answering, before they take their place (by language).
GREETINGS = {
    "en": "Hello, we are calling you back as you asked. Please hold: you are next in line.",
    "ru": "Здравствуйте, мы перезваниваем вам, как вы просили. Оставайтесь на линии: вы следующий в очереди.",
}

log = logging.getLogger(__name__)
DB_FAMILY = "ivr_callback"
DIALING = "DIALING"
ANSWER = "ANSWER"
PLACE_GRACE_S = 15.0  # an originated place not yet in the queue is not originated again before this
HOLD_S = 6 * 3600  # a place re-made after this, so Asterisk never holds a channel for days
JOURNEY_WINDOW_S = 7 * 86400


#: The AMI events the dialer reads: the dialplan's ``UserEvent(IvrCallback)`` with each dial's outcome.
EVENTS = ("UserEvent",)

class DialerAmi(Protocol):
    async def action(self, action: Mapping[str, str], timeout: float = 10.0) -> Mapping[str, str]: ...

    async def db_tree(self, family: str) -> dict[str, str]: ...

    async def db_del(self, family: str, key: str) -> None: ...

    async def channel_names(self) -> list[str]: ...


class Tokens(Protocol):
    async def issue(self, claim: ContextClaim) -> str: ...


class WhisperFiles(Protocol):
    async def text(self, language: str, text: str) -> str: ...


class CallbackDialer:
    def __init__(self, ami: DialerAmi, book: CallbackBook, monitor: QueueMonitor,
                 policy: Callable[[], CallbackPolicy], *, tokens: Tokens | None = None,
                 agent_events: AgentEventRecorder | None = None,
                 confirmations: CallbackConfirmations | None = None, whisper: WhisperFiles | None = None,
                 whisper_language: str = "en", caller_id: str = "100", trunk: str = "demo-trunk",
                 timezone: str = "UTC", hold_s: int = HOLD_S, clock: Callable[[], float] = time.time,
                 is_open: Callable[[str, float], bool] = lambda _queue, _now: True) -> None:
        self.ami = ami
        self.book = book
        self.monitor = monitor
        self._policy = policy
        self.tokens = tokens
        self.agent_events = agent_events
        self.confirmations = confirmations
        self.whisper = whisper
        self.whisper_language = whisper_language
        self.caller_id = caller_id
        self.trunk = trunk
        self.timezone = timezone
        #: A place is made again after this: pass less than the context token's lifetime,
        #: so the agent who takes a place always gets a token that still resolves.
        self.hold_s = hold_s
        self.clock = clock
        #: Whether a queue's callbacks may be dialled now (callbacks.yaml ``hours``); outside
        #: them no place is held, and at the opening every one comes back in its order.
        self.is_open = is_open
        self._placed: dict[str, float] = {}  # callback id -> when its place was originated
        self._rung: dict[str, float] = {}  # customer first: callback id -> when its ring leg was originated
        self._answered_at: dict[str, float] = {}  # callback id -> when its ANSWER was applied
        self._wake = asyncio.Event()
        self.active = False  # this process dials (it holds the lease, or runs with none)

    def on_event(self, event: Mapping[str, str]) -> None:
        """AMI listener: a step of a callback's dialplan happened; reconcile now, not in a second."""
        if event.get("Event") == "UserEvent" and event.get("UserEvent") == "IvrCallback":
            self._wake.set()

    async def run(self, interval_s: float = 1.0, lease: Lease | None = None) -> None:
        """Reconcile every ``interval_s`` (and on every callback event). With ``lease``, only
        while this controller holds it: several controllers may run a dialer, one dials."""
        failing = ""
        self.active = lease is None
        while True:
            try:
                if lease is None or await self._leased(lease):
                    await self.reconcile()
                    if failing:
                        log.info("callbacks reconciled again")
                    failing = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - AMI or the store away: try again next round
                if str(exc) != failing:  # once per cause, not every second while AMI is down
                    log.warning("callbacks not reconciled: %s (retrying every %.0f s)", exc, interval_s)
                failing = str(exc)
            self._wake.clear()
            try:
                async with asyncio.timeout(interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _leased(self, lease: Lease) -> bool:
        was = self.active
        self.active = await lease.hold()
        if self.active and not was:
            # What this process remembered from an earlier turn is stale: Asterisk's queues and
            # AstDB, read every round, are what the last holder left.
            self._placed.clear()
            self._rung.clear()
            self._answered_at.clear()
        return self.active

    async def reconcile(self) -> None:
        """One round: results in, finished places out, missing places in (see the module)."""
        await self.monitor.refresh()
        results = await self.ami.db_tree(DB_FAMILY)
        callbacks = {c.id: c for c in await self.book.all()}
        for cb_id, value in results.items():
            if cb_id.startswith("cb"):
                await self._result(callbacks.get(cb_id), cb_id, value, callbacks)
        places = {e.callback_id: e for e in self.monitor.all_entries() if e.callback_id}
        now = self.clock()
        for cb_id, entry in places.items():
            cb = callbacks.get(cb_id or "")
            if cb is not None and now - self._answered_at.get(cb.id, -1e9) < PLACE_GRACE_S:
                continue  # customer first: the customer who answered gives the place up as they take it
            if cb is None or not cb.open:  # cancelled, expired, or done elsewhere: give the place up
                await self._hangup(entry.channel)
            elif cb.state == WAITING and (cb.due_at > now or not self.is_open(cb.queue, now)):
                await self._hangup(entry.channel)  # unanswered (customer first), or the queue's hours ended
        await self._lost_rings(callbacks, results)
        waiting = sorted((c for c in callbacks.values() if c.state == WAITING), key=order)
        for cb in waiting:
            policy = self._policy().for_queue(cb.queue)
            if now - cb.requested_at > policy.keep_days * 86400:
                await self._finish(cb, ABANDONED, f"not reached within {policy.keep_days} days")
                continue
            if cb.id in places:
                self._placed.pop(cb.id, None)
                continue
            if cb.due_at > now or now - self._placed.get(cb.id, 0.0) < PLACE_GRACE_S:
                continue
            if not self.is_open(cb.queue, now):
                continue
            await self._place(cb, callbacks)
        for cb_id, entry in places.items():
            cb = callbacks.get(cb_id or "")
            if cb is not None and entry.position == 1 and cb.state == WAITING and cb.due_at <= now \
                    and self.is_open(cb.queue, now):
                policy = self._policy().for_queue(cb.queue)
                if policy.mode == CUSTOMER_FIRST and now - self._rung.get(cb.id, -1e9) >= PLACE_GRACE_S:
                    await self._ring_first(cb, policy)

    async def _lost_rings(self, callbacks: dict[str, Callback], results: Mapping[str, str]) -> None:
        """A callback ringing when Asterisk went down has no channel and no result: the attempt
        counts as unanswered (the customer never talked to anyone), and it is placed again."""
        ringing = [c for c in callbacks.values() if c.state == RINGING]
        if not ringing:
            return
        alive = " ".join(await self.ami.channel_names())
        now = self.clock()
        for cb in ringing:
            status = results.get(cb.id, "")
            if status and DIALING not in status:
                continue  # its result is there to be applied
            # An agent took the place: any of its channels. Customer first, no agent yet: the
            # ring leg itself (the place waits in the queue either way), once it had time to appear.
            leg = f"Local/{cb.id}@" if status else f"Local/{cb.id}@{RING_CONTEXT}"
            if leg in alive or now - self._rung.get(cb.id, -1e9) < PLACE_GRACE_S:
                continue
            log.warning("callback %s: its call is gone with no result (Asterisk restarted?)", cb.id)
            changed = await self._unanswered(cb, cb.attempts, "LOST")
            if changed is not None:
                callbacks[cb.id] = changed
            if status:
                await self.ami.db_del(DB_FAMILY, cb.id)

    # -- results ---------------------------------------------------------------------------------

    async def _result(self, cb: Callback | None, cb_id: str, value: str,
                      callbacks: dict[str, Callback]) -> None:
        attempt_text, _, rest = value.partition(":")
        status, _, detail = rest.partition(":")
        try:
            attempt = int(attempt_text)
        except ValueError:
            attempt = 0
        done = True
        # This attempt's news only: the one ringing now, or the next (its DIALING was missed).
        # An old attempt's result, already in the record, is only cleared away.
        fresh = cb is not None and ((cb.state == RINGING and attempt == cb.attempts)
                                    or (cb.state == WAITING and attempt == cb.attempts + 1))
        if cb is not None and fresh:
            if status == DIALING:
                done = False  # the customer's phone rings; the result follows
                if cb.state != RINGING:
                    agent = agent_name(detail) if detail else ""
                    changed = await self.book.change(
                        cb.id, lambda c: c.but(state=RINGING, attempts=attempt, agent=agent) if c.open else None,
                        CALLBACK_ATTEMPTED, lambda c: {"attempt": attempt, "outcome": "ringing", "agent": c.agent})
                    if changed is not None:
                        callbacks[cb.id] = changed
            elif status == ANSWER:
                changed = await self._answered(cb, attempt)
                if changed is not None:
                    callbacks[cb.id] = changed
            else:
                changed = await self._unanswered(cb, attempt, status or "UNKNOWN")
                if changed is not None:
                    callbacks[cb.id] = changed
        if done:
            await self.ami.db_del(DB_FAMILY, cb_id)

    async def _answered(self, cb: Callback, attempt: int) -> Callback | None:
        now = self.clock()
        self._answered_at[cb.id] = now
        for old in [k for k, at in self._answered_at.items() if now - at > 600]:
            del self._answered_at[old]
        return await self.book.change(
            cb.id, lambda c: c.but(state=COMPLETED, attempts=attempt, outcome=ANSWER) if c.open else None,
            CALLBACK_ATTEMPTED, lambda c: {"attempt": attempt, "outcome": ANSWER, "agent": c.agent},
            more=lambda c: [(CALLBACK_CONNECTED, {"agent": c.agent, "requested_at": c.requested_at,
                                                  "waited_s": round(now - c.requested_at), "via": c.channel}),
                            (CALLBACK_FINISHED, {"outcome": COMPLETED, "attempts": attempt, "by": c.agent})])

    async def _unanswered(self, cb: Callback, attempt: int, status: str) -> Callback | None:
        policy = self._policy().for_queue(cb.queue)
        attempts = max(attempt, cb.attempts)
        if attempts >= policy.attempts:
            changed = await self.book.change(
                cb.id, lambda c: c.but(state=FAILED, attempts=attempts, outcome=status) if c.open else None,
                CALLBACK_ATTEMPTED, lambda c: {"attempt": attempt, "outcome": status, "agent": c.agent},
                more=lambda c: [(CALLBACK_FINISHED, {"outcome": FAILED, "attempts": attempts, "by": "dialer"})])
            if changed is not None and self.confirmations is not None:
                try:
                    await self.confirmations.missed(changed)
                except Exception:  # noqa: BLE001 - the failure is journaled; the SMS is a courtesy
                    log.exception("callback %s: the 'we tried' SMS was not sent", cb.id)
            return changed
        due = self.clock() + policy.retry_after_s
        return await self.book.change(
            cb.id, lambda c: c.but(state=WAITING, attempts=attempts, outcome=status, due_at=due, agent="")
            if c.open else None,
            CALLBACK_ATTEMPTED, lambda c: {"attempt": attempt, "outcome": status, "agent": cb.agent})

    async def _finish(self, cb: Callback, outcome: str, why: str) -> None:
        await self.book.change(cb.id, lambda c: c.but(state=outcome, outcome=why) if c.open else None,
                               CALLBACK_FINISHED, lambda c: {"outcome": outcome, "attempts": c.attempts,
                                                             "by": "dialer"})

    # -- places ----------------------------------------------------------------------------------

    def position_for(self, cb: Callback, callbacks: Mapping[str, Callback]) -> int:
        """1 + the entries that stay ahead: higher priority, or equal priority and an earlier place."""
        now = self.clock()
        ahead = 0
        entries: list[QueueEntry] = self.monitor.entries(cb.queue)
        for entry in entries:
            other = callbacks.get(entry.callback_id or "")
            placed_at = other.place_at if other is not None else entry.joined_at or now - entry.wait_s
            if entry.priority > cb.priority or (entry.priority == cb.priority and placed_at <= cb.place_at):
                ahead += 1
        for other_id, at in self._placed.items():  # originated this round or just before: not listed yet
            other = callbacks.get(other_id)
            if other is None or other.queue != cb.queue or other_id == cb.id or now - at >= PLACE_GRACE_S:
                continue
            if any(e.callback_id == other_id for e in entries):
                continue
            if order(other) < order(cb):
                ahead += 1
        return ahead + 1

    async def _place(self, cb: Callback, callbacks: Mapping[str, Callback]) -> None:
        policy = self._policy().for_queue(cb.queue)
        attempt = cb.attempts + 1
        position = self.position_for(cb, callbacks)
        uid = f"{cb.id}-{attempt}"
        variables = await self._variables(cb, attempt, policy, uid)
        variables.update({cv.CB_POSITION: str(position), cv.CB_HOLD_S: str(self.hold_s),
                          cv.CB_WHISPER: await self._whisper(cb)})
        self._placed[cb.id] = self.clock()
        await self._originate(f"Local/{cb.id}@{HOLD_CONTEXT}/n", SLOT_CONTEXT, cb, uid, variables, 10)
        log.info("callback %s: place made in %s at position %d (attempt %d)", cb.id, cb.queue, position, attempt)

    async def _ring_first(self, cb: Callback, policy: QueuePolicy) -> None:
        """Customer first: the place is next; ring the customer now (the attempt the place was made for)."""
        attempt = cb.attempts + 1
        changed = await self.book.change(
            cb.id, lambda c: c.but(state=RINGING, attempts=attempt, agent="") if c.state == WAITING else None,
            CALLBACK_ATTEMPTED, lambda c: {"attempt": attempt, "outcome": "ringing", "agent": "", "first": "customer"})
        if changed is None:
            return
        self._rung[cb.id] = self.clock()
        uid = f"{cb.id}-{attempt}c"
        variables = await self._variables(cb, attempt, policy, uid)
        variables[cv.CB_GREETING] = await self._greeting(cb)
        await self._originate(f"Local/{cb.id}@{RING_CONTEXT}/n", JOINED_CONTEXT, cb, uid, variables,
                              policy.ring_s + 10)
        log.info("callback %s: next in %s, ringing the customer first (attempt %d)", cb.id, cb.queue, attempt)

    async def _variables(self, cb: Callback, attempt: int, policy: QueuePolicy, uid: str) -> dict[str, str]:
        """What both halves of a place or a ring leg need, the agent's token included."""
        reason = f"{cb.reason}; callback asked {self._clock_text(cb.requested_at)} by {cb.channel}"
        variables = {
            cv.QUEUE: cb.queue, cv.QUEUE_PRIORITY: str(cb.priority), cv.ROUTE_REASON: reason,
            cv.PATH: f"callback>{cb.channel}", cv.CB_ATTEMPT: str(attempt), cv.CB_NUMBER: cb.number,
            cv.CB_RING_S: str(policy.ring_s), cv.CB_FROM: self.caller_id, cv.CB_TRUNK: self.trunk}
        token = await self._token(cb, uid)
        if token:
            variables[cv.CONTEXT_TOKEN] = token
        if self.agent_events is not None:
            self.agent_events.track(uid, RoutedCall(cb.key, "voice", cb.queue))
        return variables

    async def _originate(self, channel: str, context: str, cb: Callback, uid: str, variables: Mapping[str, str],
                         timeout_s: int) -> None:
        await self.ami.action({
            "Action": "Originate", "Channel": channel, "Context": context,
            "Exten": cb.id, "Priority": "1", "Async": "true", "Timeout": str(timeout_s * 1000),
            "ChannelId": uid, "OtherChannelId": f"{uid}b", "CallerID": f"\"callback\" <{cb.number}>",
            "Variable": ",".join(f"{k}={_safe(v)}" for k, v in variables.items())})

    async def _token(self, cb: Callback, uid: str) -> str | None:
        if self.tokens is None:
            return None
        claim = ContextClaim(customer_key=cb.key, interaction=uid, queue=cb.queue, priority=cb.priority,
                             route_reason=cb.reason, channel="voice",
                             journey_since=cb.requested_at - JOURNEY_WINDOW_S)
        try:
            return await self.tokens.issue(claim)
        except Exception:  # noqa: BLE001 - no token is better than no callback
            log.exception("callback %s: could not issue a context token", cb.id)
            return None

    async def _whisper(self, cb: Callback) -> str:
        """What the agent hears before the customer rings: who, and since when."""
        if self.whisper is None:
            return "beep"
        text = whisper_text(cb, self._clock_text(cb.requested_at))
        try:
            return await self.whisper.text(self.whisper_language, text)
        except Exception:  # noqa: BLE001 - a beep will do
            log.warning("callback %s: whisper not synthesised; a beep instead", cb.id)
            return "beep"

    async def _greeting(self, cb: Callback) -> str:
        """What a customer rung first hears on answering, in their language; nothing if it cannot be made."""
        if self.whisper is None:
            return ""
        language = cb.language if cb.language in GREETINGS else "en"
        try:
            return await self.whisper.text(language, GREETINGS[language])
        except Exception:  # noqa: BLE001 - they are put through without it
            log.warning("callback %s: greeting not synthesised", cb.id)
            return ""

    def _clock_text(self, at: float) -> str:
        from zoneinfo import ZoneInfo
        return dt.datetime.fromtimestamp(at, ZoneInfo(self.timezone)).strftime("%H:%M")

    async def _hangup(self, channel: str) -> None:
        try:
            await self.ami.action({"Action": "Hangup", "Channel": channel})
        except Exception as exc:  # noqa: BLE001 - gone already
            log.debug("place %s not hung up: %s", channel, exc)


def whisper_text(cb: Callback, asked_at: str) -> str:
    """Short, since every second of it is the agent's: the name, else the number's last four
    digits (the agent's phone and page show the whole number), and when the customer asked."""
    who = cb.name or "the number ending " + " ".join(cb.number[-4:])
    return f"Callback to {who}, asked at {asked_at}."


def _safe(value: Any) -> str:
    """An Originate variable's value: no commas (the separator) and no line breaks."""
    return str(value).replace(",", ";").replace("\r", " ").replace("\n", " ")
