"""The USSD gateway: one validated request in, one screen out, state in the shared kv table.

For each request, in order: the per-number rate limit; then, under a deadline that holds
whatever the CRM does, the session's record is loaded (any gateway process may serve
any request: nothing about a session lives in process memory between requests) and:

- a repeated request (same ``text`` as last time) gets the stored reply: nothing runs;
- a known session goes on (:class:`~ivr.ussd.conversation.TreeSessions`), or
  answers "timed out" after ``session.timeout_s`` of inactivity;
- an unknown session starts: the caller is looked up and the code opens the menus at its
  entry (or offers to continue a session that broke off); ``*100#``'s one END screen with
  the balance is the tree's ``balance_only`` node. An unknown session whose ``text`` is not empty is a new session with
  those inputs, replayed in order: that is how aggregators deliver a dial-through code
  (``*111*3*1#`` arrives as ``*111#`` with text ``3*1``).

The new record and the request's journey events are written together; only then is the
screen returned. Every failure of the CRM, the store or the flow ends in a short END
screen ("try again later"), never an HTTP error: the subscriber always sees an answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, Protocol

from ivr.config.errors import TemplateFailed
from ivr.crm.ports import ActionService, CallerLookup
from ivr.crm.session_start import CallerSessions
from ivr.deadlines import within
from ivr.errors import ConfigError
from ivr.flow.context import CallerContext
from ivr.flow.errors import FlowError
from ivr.flow.events import ActionResult
from ivr.flow.ports import CurrentTree
from ivr.journey.errors import JourneyError, WriteConflict
from ivr.journey.events import (
    HANGUP,
    USSD_REQUEST,
    USSD_RESUMED,
    USSD_SCREEN,
)
from ivr.journey.ports import JourneyStore, KvPut, StampedEvent
from ivr.ussd.config import ServiceCode, UssdConfig, check_entries
from ivr.ussd.conversation import Event, TreeSessions
from ivr.ussd.errors import ReplayFailed, SessionMismatch
from ivr.ussd.protocol import SEPARATOR, UssdReply, UssdRequest, UssdSessionEnd, split_text
from ivr.ussd.ratelimit import TokenBucketLimiter
from ivr.ussd.session_end import END_NAMESPACE, end_events
from ivr.ussd.sessions import DONE, NAMESPACE, OFFER, RUN, SessionRecord, SessionStore, blank
from ivr.ussd.shared_ratelimit import SharedTokenBucket
from ivr.ussd.walk import CHANNEL

log = logging.getLogger(__name__)

Clock = Callable[[], float]



@dataclass(frozen=True)
class _Caller:
    """Who dialled, as the session will know them for its whole life."""

    context: CallerContext
    journey_key: str
    language: str
    status: str  # the lookup's: found, unknown, unavailable
    events: tuple[Event, ...]


class UssdGateway:
    """Answers aggregator requests; :func:`ivr.ussd.http.mount_ussd` puts it on HTTP.

    ``lookup`` and ``actions`` are the CRM ports the voice driver uses (their own time
    budgets apply inside the gateway's deadline); ``journey`` stores the events and, in
    its kv table, the sessions. ``clock`` is unix time, injected so tests can move it.
    """

    def __init__(self, config: UssdConfig, trees: CurrentTree, lookup: CallerLookup, actions: ActionService,
                 journey: JourneyStore, *, clock: Clock = time.time, shared_limits: bool = False) -> None:
        problems = check_entries(config, trees.current().nodes)
        if problems:
            raise ConfigError("\n".join(problems), hint="point each code's 'entry' at a node of config/menus/")
        self.config = config
        self.trees = trees
        self.lookup = lookup
        self.callers = CallerSessions(lookup)
        self.actions = actions
        self.journey = journey
        self.clock = clock
        self.sessions = SessionStore(journey, config.session, clock=clock)
        # Several gateway processes share one bucket per number (in the journey's kv table);
        # one process alone keeps its buckets in memory, which costs no store round trip.
        self.limiter: RateLimiter = (SharedTokenBucket(config.rate_limit, journey, clock) if shared_limits
                                     else _InProcess(TokenBucketLimiter(config.rate_limit, clock)))
        self.menus = TreeSessions(config, _CheckedActions(actions, self._before_action))
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._unchecked: dict[str, SessionRecord] = {}  # records answered from memory, by session

    # -- the one entry point --------------------------------------------------------------

    async def answer(self, request: UssdRequest) -> UssdReply:
        """The screen for ``request``. Raises only :class:`SessionMismatch` (a protocol error)."""
        if not await self.limiter.allow(request.number):
            log.info("USSD session %s: rate limit for %s", _short(request.session_id), _masked(request.number))
            return UssdReply(True, self.config.texts.get("rate_limited", self.config.language))
        try:
            async with within(self.config.limits.deadline_s):
                async with self._session_lock(request.session_id):
                    try:
                        return await self._answer(request)
                    except WriteConflict:
                        # Another process (or a retry sent to it) moved the session on since
                        # this one saw it: nothing was stored; answer again from its record.
                        log.info("USSD session %s: moved on elsewhere meanwhile; answering from the stored record",
                                 _short(request.session_id))
                        return await self._answer(request)
        except TimeoutError:
            log.warning("USSD session %s: no answer within %.1f s", _short(request.session_id),
                        self.config.limits.deadline_s)
        except JourneyError as exc:
            log.error("USSD session %s: journey store failed: %s", _short(request.session_id), exc)
        except (FlowError, TemplateFailed) as exc:
            log.error("USSD session %s: the flow failed: %s", _short(request.session_id), exc)
        return self.try_later()

    async def session_ended(self, end: UssdSessionEnd) -> bool:
        """Put the aggregator's end-of-session notification in the journey; False for a repeat.

        Raises :class:`SessionMismatch` when the number is not the session's, and
        ``JourneyError`` or ``TimeoutError`` when it could not be stored: the HTTP side then
        answers 503, and the aggregator sends it again.
        """
        async with within(self.config.limits.deadline_s), self._session_lock(end.session_id):
            if await self.journey.kv_get(END_NAMESPACE, end.session_id) is not None:
                return False
            record = await self.sessions.load(end.session_id)
            if record is not None and record.number != end.number:
                raise SessionMismatch("does not match the session's number", field="phoneNumber")
            key = record.journey_key if record is not None else await self._journey_key(end.number)
            seen = KvPut(END_NAMESPACE, end.session_id, {"status": end.status}, self.config.session.retain_s)
            await self.journey.put_and_append([seen], key, _stamped(end.session_id, end_events(record, end),
                                                                    self.clock()))
            return True

    def try_later(self, language: str | None = None) -> UssdReply:
        """The END screen for anything that went wrong: short, and the subscriber knows what to do."""
        return UssdReply(True, self.config.texts.get("try_later", language or self.config.language))

    # -- dispatch -------------------------------------------------------------------------

    async def _answer(self, request: UssdRequest) -> UssdReply:
        # The record this process knows answers a repeat or the next input (the usual
        # request), checked only before an action reaches the CRM; anything else may follow
        # requests another process answered: read it.
        session_id = request.session_id
        record = self.sessions.known(session_id, trust=partial(_one_step_on, request))
        if record is None:
            return await self._answer_from(await self.sessions.load(session_id, fresh=True), request)
        self._unchecked[session_id] = record
        try:
            return await self._answer_from(record, request)
        finally:
            self._unchecked.pop(session_id, None)

    async def _before_action(self, session_id: str) -> None:
        """An action is about to reach the CRM: the record it follows must be the stored one,
        or a request another process answered would run a second time (:class:`WriteConflict`:
        :meth:`answer` then answers from the stored record)."""
        record = self._unchecked.pop(session_id, None)
        if record is not None and not await self.sessions.still_stored(record):
            self.sessions.forget(session_id)
            raise WriteConflict("ussd sessions", NAMESPACE, session_id)

    async def _answer_from(self, record: SessionRecord | None, request: UssdRequest) -> UssdReply:
        now = self.clock()
        if record is None:
            return await self._open(request, now)
        if record.number != request.number:
            raise SessionMismatch("does not match the session's number", field="phoneNumber")
        start = _continues(record, request)
        if start is None or record.state == DONE:
            return record.reply
        if now - record.updated > self.config.session.timeout_s:
            return await self._expire(record, request, now)
        tree = self.trees.current()
        try:
            if record.tree != tree.version:
                raise ReplayFailed(f"the session ran on menu version {record.tree}, now {tree.version}")
            old = (await self.sessions.load(record.offer_from, fresh=True)
                   if record.state == OFFER and record.offer_from else None)
            new, events = await self.menus.advance(record, request, tree, start, resume_from=old)
        except ReplayFailed as exc:
            log.warning("USSD session %s: cannot go on: %s", _short(request.session_id), exc)
            new, events = self.menus.restart(record, request, "session could not be rebuilt")
        if record.state == OFFER and new.state == RUN and all(kind != USSD_RESUMED for kind, _ in events):
            await self.sessions.forget_resume(record.number)  # "start over": do not offer the old one again
        await self._store(new.advance(updated=now), events, now)
        return new.reply

    async def _open(self, request: UssdRequest, now: float) -> UssdReply:
        code = self.config.codes.get(request.service_code)
        if code is None:
            log.info("USSD session %s: unknown service code %s", _short(request.session_id), request.service_code)
            return UssdReply(True, self.config.texts.get("unknown_code", self.config.language))
        caller = await self._identify(request, code, now)
        dialled: dict[str, Any] = {"code": code.code, "service": code.service, "input": request.text}
        events: list[Event] = [(USSD_REQUEST, dialled), *caller.events]
        tree = self.trees.current()
        record = SessionRecord(
            session_id=request.session_id, code=code.code, number=request.number, journey_key=caller.journey_key,
            tree=tree.version, context=caller.context, state=RUN, created=now, updated=now, entry=code.entry,
            preset=len(code.inputs), last_text=request.text)
        if caller.status == "unavailable":
            reply = self.try_later(caller.language)
            record = record.advance(state=DONE, context=CallerContext(), reply=reply)
            events.append((USSD_SCREEN, {"title": reply.screen, "text": reply.screen, "end": True}))
        else:
            # A dial-through or a deep link names where to go: no offer to continue elsewhere,
            # however the aggregator delivers it (preset inputs of the code, or ``text``).
            dialled_through = bool(request.inputs or code.inputs)
            old = None if dialled_through else await self._resumable(request, tree.version, now)
            try:
                record, more = await self.menus.start(record, request, tree, code, old)
            except ReplayFailed as exc:  # a masked preset or a broken entry: nothing to resume from
                log.error("USSD session %s: cannot start: %s", _short(request.session_id), exc)
                record, more = self.menus.restart(record, request, "session could not start")
            events.extend(more)
            # A dial-through may carry a PIN: the journey gets the text as the record keeps it.
            dialled["input"] = blank(request.text, record.masked_positions)
        await self._store(record, events, now)
        return record.reply

    # -- helpers --------------------------------------------------------------------------

    async def _identify(self, request: UssdRequest, code: ServiceCode, now: float) -> _Caller:
        start = await self.callers.start(request.number, dnis=code.code,
                                         moment=dt.datetime.fromtimestamp(now).astimezone())
        if start.number and start.number != request.number:
            start = replace(start, context=replace(start.context, caller={"number": start.number}))
        return _Caller(start.context, start.journey_key, start.language or self.config.language, start.status,
                       start.events)

    async def _journey_key(self, number: str) -> str:
        """The journey a session with no record left belongs to: the customer's, else the number's."""
        return (await self.callers.start(number)).journey_key

    async def _resumable(self, request: UssdRequest, version: str, now: float) -> SessionRecord | None:
        """The subscriber's session that broke off mid-menu within the resume window, if any."""
        if self.config.session.resume_window_s <= 0:
            return None
        target = await self.sessions.resume_target(request.number)
        if target is None or target == request.session_id:
            return None
        old = await self.sessions.load(target, fresh=True)  # another session: read what is stored
        if old is None or not old.resumable or old.tree != version or old.number != request.number:
            return None
        if now - old.updated > self.config.session.resume_window_s:
            return None
        code = self.config.codes.get(old.code)
        return old if code is not None and code.mode == "tree" else None

    async def _expire(self, record: SessionRecord, request: UssdRequest, now: float) -> UssdReply:
        language = record.context.customer.get("language")
        reply = UssdReply(True, self.config.texts.get(
            "expired", language if isinstance(language, str) else self.config.language, code=record.code))
        events: list[Event] = []
        if record.state == RUN and not record.finished:
            events.append((HANGUP, {"node": record.node, "by": "caller", "reason": "session timed out"}))
        events.append((USSD_SCREEN, {"title": reply.screen, "text": reply.screen, "end": True}))
        await self._store(record.advance(state=DONE, reply=reply, last_text=request.text, updated=now), events, now)
        return reply

    async def _store(self, record: SessionRecord, events: list[Event], now: float) -> None:
        """The record and the request's journey events, in one write: the screen is shown
        only once both are stored, and a failed write leaves neither (the subscriber's
        retry runs the request again, from the record before it)."""
        await self.sessions.save(record, now, _stamped(record.session_id, events, now))

    def _session_lock(self, session_id: str) -> _SessionLock:
        """One request per session at a time in this process (a retry waits for the original)."""
        return _SessionLock(self._locks, session_id)


class RateLimiter(Protocol):
    async def allow(self, number: str) -> bool: ...


@dataclass(frozen=True)
class _InProcess:
    """This process's own buckets, behind the same awaitable ``allow`` as the shared ones."""

    buckets: TokenBucketLimiter

    async def allow(self, number: str) -> bool:
        return self.buckets.allow(number)


class _SessionLock:
    """``async with``: the session's lock, shared by the requests of one session while any waits.

    A class, not an ``asynccontextmanager``: that builds a generator and its wrapper for
    every request, and only one request in thousands ever waits here."""

    __slots__ = ("_locks", "_session_id", "_lock")

    def __init__(self, locks: dict[str, tuple[asyncio.Lock, int]], session_id: str) -> None:
        self._locks = locks
        self._session_id = session_id

    async def __aenter__(self) -> None:
        lock, users = self._locks.get(self._session_id, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[self._session_id] = (lock, users + 1)
        self._lock = lock
        try:
            await lock.acquire()
        except BaseException:
            self._release_user()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
        self._release_user()

    def _release_user(self) -> None:
        lock, users = self._locks[self._session_id]
        if users <= 1:
            del self._locks[self._session_id]
        else:
            self._locks[self._session_id] = (lock, users - 1)


class _CheckedActions:
    """The CRM actions, each after the gateway's check that its session's record is current."""

    def __init__(self, inner: ActionService, before: Callable[[str], Awaitable[None]]) -> None:
        self._inner = inner
        self._before = before

    async def run(self, name: str, args: Mapping[str, Any], context: CallerContext, *,
                  interaction: str) -> ActionResult:
        await self._before(interaction)
        return await self._inner.run(name, args, context, interaction=interaction)


def _one_step_on(request: UssdRequest, record: SessionRecord) -> bool:
    """Whether ``request`` repeats the record's last request or adds one input to it."""
    seen = record.last_text.count(SEPARATOR) + 1 if record.last_text else 0
    return seen <= len(request.inputs) <= seen + 1


def _continues(record: SessionRecord, request: UssdRequest) -> int | None:
    """Where the request's new inputs start; None for a repeat of the last request (answered
    with the stored reply: nothing runs twice) or a stale retry of an earlier one.

    Masked inputs are compared blank: the record does not keep them. Raises
    :class:`SessionMismatch` when ``text`` rewrites the session's history.
    """
    seen = split_text(record.last_text)
    masked = record.masked_positions
    inputs = tuple("" if i in masked else value for i, value in enumerate(request.inputs))
    if inputs[: len(seen)] == seen and len(inputs) > len(seen):
        return len(seen)
    if seen[: len(inputs)] == inputs:
        return None
    raise SessionMismatch("does not continue this session's earlier inputs", field="text")


def _money(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def _stamped(session_id: str, events: list[Event], now: float) -> list[StampedEvent]:
    """A request's events as the journey stores them: this moment, this session, plain JSON."""
    return [StampedEvent(now, CHANNEL, session_id, kind, _plain(data)) for kind, data in events]


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """Journey data as plain JSON: money and dates as text (the journey is read, not computed on)."""
    if type(value) is dict:
        for item in value.values():
            if type(item) not in _SCALAR_TYPES:
                return {str(k): _plain(v) for k, v in value.items()}
        return value  # the usual event: nothing to convert
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (Decimal, dt.date)):
        return str(value)
    return value


def _short(session_id: str) -> str:
    return session_id[:24]


def _masked(number: str) -> str:
    return number[:-4] + "****" if len(number) > 6 else "****"
