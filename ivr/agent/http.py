"""The agent context API: the token that came with the call becomes the caller's journey.

``GET /context/{token}`` (JSON, for the agent desktop or a CRM plug-in) and
``GET /agent/{token}`` (the screen pop, rendered by :mod:`ivr.agent.screen_pop`) share
everything here: the API key check, the token check and the journey read. The desktop is the only
client, so every refusal is terse on purpose: 401 when the key is missing or wrong, 404
for any token that does not resolve (forged, malformed, unknown, expired) with one body
for all, so a client cannot learn which tokens exist or when they were issued. Why a
token was refused goes to the log, with the token's first characters only.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ivr.agent import screen_pop
from ivr.errors import ConfigError
from ivr.journey.errors import JourneyError, TokenError
from ivr.journey.ports import JourneyStore, StampedEvent
from ivr.journey.tokens import ContextClaim, TokenService

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
JOURNEY_LIMIT = 200  # a week of a busy customer's steps; more would not fit an agent's glance
MAX_QUOTED = 60  # characters of caller text (speech, SMS) shown in a summary

CHANNEL_LABELS = {"voice": "call", "ussd": "USSD", "sms": "SMS"}

KEY_QUERY = "key"  # the screen pop only: a browser opening a URL cannot send a header
NOT_FOUND = {"error": "not_found"}
UNAUTHORIZED = {"error": "unauthorized"}
UNAVAILABLE = {"error": "unavailable"}
# The answers must not be cached or leak the URL (with its token) to another site.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                   "X-Content-Type-Options": "nosniff"}


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
class AgentContext:
    """Who is calling, why they reached this agent, and what they did before (newest first)."""

    claim: ContextClaim
    journey: tuple[JourneyEntry, ...]
    customer_name: str | None = None

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
            "journey": [entry.to_dict() for entry in self.journey],
        }


class ContextNotFound(Exception):
    """The token did not resolve; deliberately without detail (the client learns nothing)."""


class AgentAccess:
    """The API key check and the token-to-context read both endpoints use."""

    def __init__(self, tokens: TokenService, journey: JourneyStore, api_key: str, *,
                 journey_limit: int = JOURNEY_LIMIT) -> None:
        if not api_key:
            raise ConfigError("the agent API needs a key", hint="set [agent_api] key / IVR_AGENT_API_KEY")
        self._tokens = tokens
        self._journey = journey
        self._key = api_key.encode("utf-8")
        self._limit = journey_limit

    def key_ok(self, presented: str | None) -> bool:
        """Constant-time comparison, so response timing does not reveal how much of a guess was right."""
        return presented is not None and hmac.compare_digest(presented.encode("utf-8", "replace"), self._key)

    async def context(self, token: str) -> AgentContext:
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
        entries = tuple(JourneyEntry(e.at, e.channel, e.interaction, e.type, e.data, summarize(e)) for e in events)
        return AgentContext(claim, entries, customer_name(events))


def mount_agent_api(app: web.Application, tokens: TokenService, journey: JourneyStore, api_key: str) -> None:
    """Add ``GET /context/{token}`` (JSON) and ``GET /agent/{token}`` (the screen pop).

    Both answer 401 for a missing or wrong key, 404 for a token that does not resolve,
    503 when the journey store is down. The screen pop also takes the key as ``?key=``.
    """
    access = AgentAccess(tokens, journey, api_key)

    async def context(request: web.Request) -> web.Response:
        if not access.key_ok(request.headers.get(API_KEY_HEADER)):
            return _json(UNAUTHORIZED, 401)
        try:
            found = await access.context(request.match_info["token"])
        except ContextNotFound:
            return _json(NOT_FOUND, 404)
        except JourneyError as exc:
            log.error("agent context unavailable: %s", exc)
            return _json(UNAVAILABLE, 503)
        return _json(found.to_dict(), 200)

    async def agent(request: web.Request) -> web.Response:
        presented = request.headers.get(API_KEY_HEADER) or request.query.get(KEY_QUERY)
        if not access.key_ok(presented):
            return _html(screen_pop.render_refusal(401), 401)
        try:
            found = await access.context(request.match_info["token"])
        except ContextNotFound:
            return _html(screen_pop.render_refusal(404), 404)
        except JourneyError as exc:
            log.error("screen pop unavailable: %s", exc)
            return _html(screen_pop.render_refusal(503), 503)
        return _html(screen_pop.render_screen_pop(found), 200)

    app.router.add_get("/context/{token}", context)
    app.router.add_get("/agent/{token}", agent)


def _json(body: Mapping[str, Any], status: int) -> web.Response:
    return web.json_response(body, status=status, headers=PRIVATE_HEADERS)


def _html(page: str, status: int) -> web.Response:
    headers = {**PRIVATE_HEADERS, "Content-Security-Policy": screen_pop.CONTENT_SECURITY_POLICY}
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8", headers=headers)


# -- reading events ------------------------------------------------------------------------


def iso(at: float) -> str:
    """ISO 8601 in UTC with milliseconds: what JavaScript's ``Date`` and every CRM parse."""
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="milliseconds")


def customer_name(events: list[StampedEvent]) -> str | None:
    """A name, if an event carries one (the CRM owns personal data: usually none does)."""
    for event in events:
        if event.type != "caller_identified":
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


_SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "node_entered": lambda d: f"reached {_t(d.get('node'))}",
    "node_skipped": lambda d: f"skipped {_t(d.get('node'))}",
    "key_pressed": _key_pressed,
    "speech_matched": lambda d: f"said {_quoted(d.get('text'))}{_in(d)}",
    "input_collected": lambda d: f"entered {_t(d.get('var'), 'a value')}{_in(d)}",
    "input_invalid": lambda d: f"answer not understood{_in(d)}{_attempt(d)}",
    "no_input": lambda d: f"said nothing{_in(d)}{_attempt(d)}",
    "action_requested": lambda d: f"asked for {_t(d.get('name'), 'an action')}",
    "action_result": _action_result,
    "route_chosen": lambda d: f"asked for {_t(d.get('queue'))}: {_t(d.get('reason'), 'no reason given')}",
    "route_decided": _route_decided,
    "hangup": _hangup,
    "caller_identified": lambda d: f"recognised as customer {_t(d.get('customer'))} by caller ID",
    "crm_unavailable": lambda d: "CRM unavailable: generic menu",
    "agent_connected": _agent_connected,
    "queue_abandoned": lambda d: f"gave up waiting in {_t(d.get('queue'))}"
                                 + (f" after {d['hold_s']} s" if d.get("hold_s") else ""),
    "ussd_request": _ussd_request,
    "ussd_screen": lambda d: f"saw USSD screen {_quoted(d.get('title') or d.get('text') or d.get('node'))}",
    "ussd_ended": _ussd_ended,
    "sms_received": lambda d: f"texted {_quoted(d.get('text'))}",
    "sms_sent": lambda d: f"received an SMS: {_quoted(d.get('text'))}",
}
