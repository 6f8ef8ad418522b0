"""The agent desktop's service: a context token becomes who is calling and their journey.

The HTTP side (:mod:`ivr.agent.http`) and the screen pop (:mod:`ivr.agent.screen_pop`) both
stand on this module and never on each other. It reads the journey through the event
registry (:mod:`ivr.journey.events`) and depends on ports, not on the token service or a
store class: :class:`~ivr.agent.ports.TokenResolver`, :class:`~ivr.agent.ports.JourneyReader`,
and optionally :class:`~ivr.agent.ports.CustomerNames` (the CRM owns the name; the journey
holds none, so the desktop asks the CRM when the page is shown).
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ivr.agent.ports import CustomerNames, JourneyReader, JourneyWriter, TokenResolver, TokenRevoker
from ivr.errors import ConfigError
from ivr.journey import events as E
from ivr.journey.errors import TokenError
from ivr.journey.ports import StampedEvent
from ivr.journey.tokens import ContextClaim

log = logging.getLogger(__name__)

JOURNEY_LIMIT = 200  # a week of a busy customer's steps; more would not fit an agent's glance
MAX_QUOTED = 60  # characters of caller text (speech, SMS) shown in a summary

CHANNEL_LABELS = {E.VOICE: "call", E.USSD: "USSD", E.SMS: "SMS", E.WEB: "web site", E.APP: "app",
                  E.EMAIL: "e-mail", E.CHAT: "chat", E.OFFICE: "office"}


@dataclass(frozen=True)
class JourneyEntry:
    """One stored event as the agent reads it: the event plus a one-line summary."""

    at: float
    channel: str
    interaction: str
    type: str
    data: Mapping[str, Any]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": iso(self.at), "channel": self.channel, "interaction": self.interaction, "type": self.type,
                "data": dict(self.data), "summary": self.summary}


@dataclass(frozen=True)
class Participant:
    """Someone on the call now: the caller's agent, an expert pulled in (the caller is implied)."""

    who: str
    role: str  # agent | expert
    since: float

    def to_dict(self) -> dict[str, Any]:
        return {"who": self.who, "role": self.role, "since": iso(self.since)}


def participants(events: Sequence[StampedEvent], interaction: str) -> list[Participant]:
    """Who is on the call ``interaction`` now, folded from its events (any order; oldest wins ties)."""
    on: dict[str, Participant] = {}
    for e in sorted((e for e in events if e.interaction == interaction), key=lambda e: e.at):
        d = e.data if isinstance(e.data, dict) else {}
        if e.type == E.AGENT_CONNECTED and d.get("agent"):
            on.setdefault(str(d["agent"]), Participant(str(d["agent"]), "agent", e.at))
        elif e.type == E.PARTICIPANT_JOINED and d.get("who") and d.get("role") != "caller":
            on.setdefault(str(d["who"]), Participant(str(d["who"]), str(d.get("role", "agent")), e.at))
        elif e.type in (E.AGENT_COMPLETED, E.CALL_TRANSFERRED):
            on.pop(str(d.get("agent") or d.get("by") or ""), None)
        elif e.type == E.PARTICIPANT_LEFT and d.get("room") == "conference":
            on.pop(str(d.get("who", "")), None)
        elif e.type == E.HANGUP:
            on.clear()
    return list(on.values())


@dataclass(frozen=True)
class AgentContext:
    """Who is calling, why they reached this agent, and what they did before (newest first)."""

    claim: ContextClaim
    journey: tuple[JourneyEntry, ...]
    customer_name: str | None = None

    @property
    def on_the_call(self) -> list[Participant]:
        return participants([StampedEvent(e.at, e.channel, e.interaction, e.type, dict(e.data))
                             for e in self.journey], self.claim.interaction)

    @property
    def cursor(self) -> float:
        """The newest event's time: the live feed goes on from there."""
        return max((e.at for e in self.journey), default=self.claim.issued_at)

    def to_dict(self) -> dict[str, Any]:
        c = self.claim
        return {
            "customer_key": c.customer_key,
            "customer_name": self.customer_name,
            "interaction": c.interaction,
            "channel": c.channel,
            "queue": c.queue,
            "priority": c.priority,
            "route_reason": c.route_reason,
            "issued_at": iso(c.issued_at),
            "expires_at": iso(c.expires_at),
            "journey_since": iso(c.journey_since),
            "on_the_call": [p.to_dict() for p in self.on_the_call],
            "journey": [entry.to_dict() for entry in self.journey],
        }


class ContextNotFound(Exception):
    """The token did not resolve; deliberately without detail (the client learns nothing)."""


#: Where every read of a journey by staff or agents is recorded (beside the journeys, never counted).
AUDIT_KEY = "staff-audit"
MAX_USER_CHARS = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable_user(user: str) -> str:
    """The name a desk sent (a header, a query string) as the audit trail may hold it."""
    return _CONTROL.sub(" ", user).strip()[:MAX_USER_CHARS]


async def write_audit(store: JourneyWriter, at: float, interaction: str, *, staff: str, role: str, user: str,
                      customer: str, by: str, outcome: str, events: int) -> None:
    """One entry of the audit trail: who read (or was refused) whose journey, by what, when."""
    data = {"staff": staff, "role": role, "user": printable_user(user), "customer": customer, "by": by,
            "outcome": outcome, "events": events}
    await store.append(AUDIT_KEY, [StampedEvent(at, E.STAFF, interaction, E.JOURNEY_READ, data)])


class AgentAccess:
    """The API key check and the token-to-context read both endpoints use.

    With an ``audit`` writer, every journey a token opens (the JSON context, the page, the
    live feed) and every revocation is recorded in the audit trail staff reads are: which
    agent (``X-IVR-User``), whose journey, by what, when. A journey is personal data; an
    entry that cannot be written means the journey is not served (the store error is raised).
    """

    def __init__(self, tokens: TokenResolver, journey: JourneyReader, api_key: str, *,
                 journey_limit: int = JOURNEY_LIMIT, names: CustomerNames | None = None,
                 audit: JourneyWriter | None = None, clock: Callable[[], float] = time.time) -> None:
        if not api_key:
            raise ConfigError("the agent API needs a key", hint="set [agent_api] key / IVR_AGENT_API_KEY")
        self._tokens = tokens
        self._journey = journey
        self._key = api_key.encode("utf-8")
        self._limit = journey_limit
        self._names = names
        self._audit = audit
        self._clock = clock

    async def audit(self, claim: ContextClaim, user: str, by: str, outcome: str = "allowed", events: int = 0) -> None:
        """One entry in the audit trail (nothing without an audit writer)."""
        if self._audit is None:
            return
        await write_audit(self._audit, self._clock(), f"agent:{printable_user(user) or 'unnamed'}",
                          staff="agent-desktop", role="agent", user=user, customer=claim.customer_key, by=by,
                          outcome=outcome, events=events)

    async def revoke(self, token: str, user: str) -> ContextClaim:
        """End ``token`` for everyone (audited); :class:`ContextNotFound` when it does not resolve."""
        if not isinstance(self._tokens, TokenRevoker):  # the token service is both
            raise ContextNotFound
        try:
            claim = await self._tokens.revoke(token)
        except TokenError as exc:
            log.info("token revocation refused for %s...: %s", exc.token_prefix, exc.reason)
            raise ContextNotFound from None
        await self.audit(claim, user, "token", "revoked")
        return claim

    def key_ok(self, presented: str | None) -> bool:
        """Constant-time comparison, so response timing does not reveal how much of a guess was right."""
        return presented is not None and hmac.compare_digest(presented.encode("utf-8", "replace"), self._key)

    async def claim(self, token: str) -> ContextClaim:
        """The claim behind ``token``; :class:`ContextNotFound` whatever the reason it has none."""
        try:
            return await self._tokens.resolve(token)
        except TokenError as exc:
            log.info("agent request refused for token %s...: %s", exc.token_prefix, exc.reason)
            raise ContextNotFound from None

    async def since(self, claim: ContextClaim, after: float) -> list[JourneyEntry]:
        """The claim's journey after ``after``, oldest first: what a live page has not shown yet."""
        events = await self._journey.recent(claim.customer_key, limit=self._limit, since=max(after, claim.journey_since))
        return [entry(e) for e in reversed(events) if e.at > after]

    async def context(self, token: str, user: str = "", by: str = "token") -> AgentContext:
        """The context behind ``token``; :class:`ContextNotFound` whatever the reason it has none.

        A store failure is not a missing token: :class:`~ivr.journey.errors.JourneyError`
        propagates so the handler answers 503 and the desktop retries.
        """
        try:
            claim = await self._tokens.resolve(token)
        except TokenError as exc:
            log.info("agent context refused for token %s...: %s", exc.token_prefix, exc.reason)
            raise ContextNotFound from None
        events = await self._journey.recent(claim.customer_key, limit=self._limit, since=claim.journey_since)
        await self.audit(claim, user, by, events=len(events))
        entries = tuple(entry(e) for e in events)
        return AgentContext(claim, entries, customer_name(events) or await self._name_from_crm(claim.customer_key))

    async def _name_from_crm(self, customer_key: str) -> str | None:
        return await name_from_crm(self._names, customer_key)


async def name_from_crm(names: CustomerNames | None, customer_key: str) -> str | None:
    """The name the CRM holds now; a CRM that cannot answer costs the name, never the page."""
    if names is None:
        return None
    try:
        name = await names.name_of(customer_key)
    except Exception as exc:  # noqa: BLE001 - the page must show whatever the CRM does
        log.warning("no customer name for %s: %s", customer_key, exc)
        return None
    return name.strip() or None if isinstance(name, str) else None


# -- reading events ------------------------------------------------------------------------


def entry(event: StampedEvent) -> JourneyEntry:
    return JourneyEntry(event.at, event.channel, event.interaction, event.type, event.data, summarize(event))


def iso(at: float) -> str:
    """ISO 8601 in UTC with milliseconds: what JavaScript's ``Date`` and every CRM parse."""
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="milliseconds")


def customer_name(events: Sequence[StampedEvent]) -> str | None:
    """A name, if an event carries one (the CRM owns personal data: usually none does)."""
    for event in events:
        if event.type != E.CALLER_IDENTIFIED:
            continue
        for name in (event.data.get("customer_name"), event.data.get("name")):
            if isinstance(name, str) and name.strip():
                return name.strip()
    return None


def summarize(event: StampedEvent) -> str:
    """One line, as the customer lived it: "pressed 2 in main", "said 'roaming'"."""
    describe = _SUMMARIES.get(event.type)
    data = event.data if isinstance(event.data, dict) else {}
    if describe is None:
        return event.type.replace("_", " ")
    try:
        return describe(data)
    except (TypeError, ValueError, AttributeError):  # data written by another version
        return event.type.replace("_", " ")


def _t(value: object, default: str = "?") -> str:
    return default if value is None or value == "" else str(value)


def _quoted(value: object) -> str:
    text = " ".join(_t(value, "").split())
    return f"'{text[:MAX_QUOTED]}…'" if len(text) > MAX_QUOTED else f"'{text}'"


def _in(data: Mapping[str, Any]) -> str:
    return f" in {data['node']}" if data.get("node") else ""


def _key_pressed(d: Mapping[str, Any]) -> str:
    if d.get("confirm") is True:
        return f"confirmed{_in(d)}"
    if d.get("confirm") is False:
        return f"declined{_in(d)}"
    return f"pressed {_t(d.get('key'))}{_in(d)}"


def _attempt(d: Mapping[str, Any]) -> str:
    return f" (attempt {d['count']})" if isinstance(d.get("count"), int) and d["count"] > 1 else ""


def _route_decided(d: Mapping[str, Any]) -> str:
    if d.get("transfer"):
        return f"transferred into {_t(d.get('queue'))} at priority {_t(d.get('priority'), '0')}: " \
               f"{_t(d.get('reason'), 'no reason given')}"
    if d.get("kind", "queue") != "queue":
        return f"turned away: {_t(d.get('reason'), 'by the routing rules')}"
    queue, reason = _t(d.get("queue")), _t(d.get("reason"), "no reason given")
    if reason.lower().startswith(queue.lower() + ":"):  # "collections: overdue 45 days" names the queue already
        reason = reason[len(queue) + 1:].strip()
    first = f", {d['agent_first']} first" if d.get("agent_first") else ""
    return f"routed to {queue}{first}: {reason}"


def _hangup(d: Mapping[str, Any]) -> str:
    if d.get("by") == "caller":
        return f"hung up{_in(d)}"
    return f"call ended by the menu{_in(d)}" + (f": {d['reason']}" if d.get("reason") else "")


def _action_result(d: Mapping[str, Any]) -> str:
    return f"{_t(d.get('name'), 'action')} {'done' if d.get('ok') else 'failed'}"


def _agent_connected(d: Mapping[str, Any]) -> str:
    where = f" ({d['queue']}" + (f", waited {d['hold_s']} s)" if d.get("hold_s") else ")") if d.get("queue") else ""
    return f"answered by {_t(d.get('agent'), 'an agent')}{where}"


def _transferred(d: Mapping[str, Any]) -> str:
    kind = {"number": "number ", "agent": "agent ", "queue": "queue "}.get(str(d.get("to_kind")), "")
    why = f": {_quoted(d['reason'])}" if d.get("reason") else ""
    return f"{_t(d.get('by'), 'an agent')} transferred the call to {kind}{_t(d.get('to'))}{why}"


def _note(d: Mapping[str, Any]) -> str:
    code = f" [{d['wrapup']}]" if d.get("wrapup") else ""
    text = f" {_quoted(d['text'])}" if d.get("text") else ""
    return f"note by {_t(d.get('agent'), 'an agent')}{code}:{text}".rstrip(":")


def _ussd_ended(d: Mapping[str, Any]) -> str:
    how = {"success": "ended the USSD session", "incomplete": "USSD session broke off",
           "failed": "USSD session failed in the network"}.get(str(d.get("status")), "USSD session ended")
    where = f" at {_t(d.get('node'))}" if d.get("node") else ""
    error = f": {_quoted(d.get('error'))}" if d.get("error") else ""
    return f"{how}{where}{error}"


def _ussd_request(d: Mapping[str, Any]) -> str:
    code = _t(d.get("code") or d.get("text"), "")
    topic = d.get("service") or d.get("label") or d.get("title")
    return f"checked {topic} by USSD {code}".rstrip() if topic else f"dialled USSD {code}".rstrip()


def _callback_requested(d: Mapping[str, Any]) -> str:
    place = f", number {d['position']} in line" if d.get("position") else ""
    wait = f", wait about {round(int(d['estimated_wait_s']) / 60)} min" if d.get("estimated_wait_s") else ""
    return f"asked for a callback to {_t(d.get('number'))} ({_t(d.get('queue'))}{place}{wait})"


def _callback_connected(d: Mapping[str, Any]) -> str:
    waited = f" after {round(int(d.get('waited_s') or 0) / 60)} min" if d.get("waited_s") is not None else ""
    return f"called back{waited}, asked by {_t(d.get('via'), 'phone')}; talking to {_t(d.get('agent'), 'an agent')}"


def _external(verb: str) -> Callable[[Mapping[str, Any]], str]:
    """An event another system sent: what happened, its text and the system's name."""
    def describe(d: Mapping[str, Any]) -> str:
        text = f" {_quoted(d['text'])}" if d.get("text") else ""
        topic = f" [{d['topic']}]" if d.get("topic") else ""
        return f"{verb}{text}{topic}"
    return describe


_SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    E.OFFER_PRESENTED: lambda d: f"was offered {_t(d.get('offer'), 'an offer')}",
    E.OFFER_ANSWERED: lambda d: f"{_t(d.get('answer'), 'answered')} the offer {_t(d.get('offer'), '')}".rstrip(),
    E.PAGE_VIEWED: _external("opened"),
    E.FORM_SUBMITTED: _external("sent a form"),
    E.ORDER_PLACED: _external("placed an order"),
    E.PAYMENT_MADE: _external("paid"),
    E.EMAIL_RECEIVED: _external("wrote an e-mail"),
    E.EMAIL_SENT: _external("was sent an e-mail"),
    E.CHAT_MESSAGE: _external("chat:"),
    E.TICKET_OPENED: _external("ticket opened:"),
    E.TICKET_UPDATED: _external("ticket updated:"),
    E.TICKET_RESOLVED: _external("ticket resolved:"),
    E.VISIT_MADE: _external("visited the office"),
    E.NODE_ENTERED: lambda d: f"reached {_t(d.get('node'))}",
    E.NODE_SKIPPED: lambda d: f"skipped {_t(d.get('node'))}",
    E.KEY_PRESSED: _key_pressed,
    E.SPEECH_MATCHED: lambda d: f"said {_quoted(d.get('text'))}{_in(d)}",
    E.INPUT_COLLECTED: lambda d: f"entered {_t(d.get('var'), 'a value')}{_in(d)}",
    E.INPUT_INVALID: lambda d: f"answer not understood{_in(d)}{_attempt(d)}",
    E.NO_INPUT: lambda d: f"said nothing{_in(d)}{_attempt(d)}",
    E.ACTION_REQUESTED: lambda d: f"asked for {_t(d.get('name'), 'an action')}",
    E.ACTION_RESULT: _action_result,
    E.ROUTE_CHOSEN: lambda d: f"asked for {_t(d.get('queue'))}: {_t(d.get('reason'), 'no reason given')}",
    E.ROUTE_DECIDED: _route_decided,
    E.HANGUP: _hangup,
    E.CALLER_IDENTIFIED: lambda d: f"recognised as customer {_t(d.get('customer'))} by caller ID",
    E.CRM_UNAVAILABLE: lambda d: "CRM unavailable: generic menu",
    E.AGENT_CONNECTED: _agent_connected,
    E.QUEUE_ABANDONED: lambda d: f"gave up waiting in {_t(d.get('queue'))}"
                                 + (f" after {d['hold_s']} s" if d.get("hold_s") else ""),
    E.USSD_REQUEST: _ussd_request,
    E.USSD_SCREEN: lambda d: f"saw USSD screen {_quoted(d.get('title') or d.get('text') or d.get('node'))}",
    E.USSD_ENDED: _ussd_ended,
    E.SMS_RECEIVED: lambda d: f"texted {_quoted(d.get('text'))}",
    E.SMS_SENT: lambda d: f"received an SMS: {_quoted(d.get('text'))}",
    E.SMS_OPT_OUT: lambda d: "opted out of SMS notifications (STOP)",
    E.SMS_OPT_IN: lambda d: "opted in to SMS notifications again (START)",
    E.AGENT_COMPLETED: lambda d: f"{_t(d.get('agent'), 'the agent')} finished"
                                 + (f" after {d['talk_s']} s" if d.get("talk_s") else ""),
    E.CALL_TRANSFERRED: _transferred,
    E.CONSULT_STARTED: lambda d: f"{_t(d.get('by'), 'the agent')} put the caller on hold to consult {_t(d.get('to'))}",
    E.PARTICIPANT_JOINED: lambda d: f"{_t(d.get('who'))} ({_t(d.get('role'))}) joined the {_t(d.get('room'))}",
    E.PARTICIPANT_LEFT: lambda d: f"{_t(d.get('who'))} ({_t(d.get('role'))}) left the {_t(d.get('room'))}",
    E.AGENT_NOTE: _note,
    E.CALLBACK_REQUESTED: _callback_requested,
    E.CALLBACK_ATTEMPTED: lambda d: f"callback attempt {_t(d.get('attempt'))}: {_t(d.get('outcome'))}",
    E.CALLBACK_CONNECTED: _callback_connected,
    E.CALLBACK_FINISHED: lambda d: f"callback {_t(d.get('outcome'))}",
}
