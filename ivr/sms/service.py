"""SMS self-service: one incoming text in, one reply out, the journey told about both.

Knows no HTTP and no Kannel: the edge (:mod:`ivr.sms.kannel_http`) turns the
gateway's query into an :class:`InboundSms` and the :class:`SmsReply` back into a
response. For each text: rate limit, CRM lookup (the caller's number is the identity),
grammar, the named action or the opt-out, the reply in the right language, shortened to
the segment budget, then one journey append (``sms_received``, the caller-session
start's ``caller_identified`` or ``crm_unavailable``, ``action_result``, ``sms_sent``: the
kinds of :mod:`ivr.journey.events`) so the agent who takes this customer's next call sees
what they texted.

Like the voice side it fails soft. A CRM that is down, an action refused, a template
that breaks for one customer: the subscriber gets the ``failed`` reply, which names the
number of a person. A journey store that is down costs the record, not the reply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ivr.crm.ports import ActionService, CallerLookup
from ivr.crm.session_start import CallerSessions, CallerStart
from ivr.flow.context import CallerContext
from ivr.journey.events import (
    ACTION_RESULT,
    SMS,
    SMS_DELIVERY,
    SMS_OPT_IN,
    SMS_OPT_OUT,
    SMS_RECEIVED,
    SMS_SENT,
)
from ivr.journey.ports import JourneySink, KvStore, StampedEvent
from ivr.ratelimit import SlidingWindowLimiter
from ivr.sms.config import Command, LocalText, SmsConfig
from ivr.sms.dlr import DeliveryReport
from ivr.sms.errors import RateLimited, TemplateFailed
from ivr.sms.grammar import Grammar, Match
from ivr.sms.segments import Segments, measure, shorten
from ivr.sms.sendsms import SmsSender
from ivr.sms.shared_ratelimit import InProcessWindow, SmsRateLimiter

log = logging.getLogger(__name__)

CHANNEL = SMS
#: Where opt-outs live in the shared kv table, keyed by E.164.
OPT_OUT_NAMESPACE = "sms_opt_out"
#: An opt-out stands until the subscriber texts START: ten years is "until then".
OPT_OUT_TTL_S = 10 * 365 * 86400.0
#: Characters of an incoming text kept in the journey (the screen pop shows 60).
MAX_STORED_TEXT = 320

Clock = Callable[[], float]


class SmsJourney(JourneySink, KvStore, Protocol):
    """What the SMS service needs from the journey store: appends, and the kv table for opt-outs."""


@dataclass(frozen=True)
class InboundSms:
    """One text from a subscriber, already checked and normalised by the edge."""

    sender: str  # E.164
    receiver: str  # the short number, as the SMSC gave it
    text: str
    message_id: str  # the gateway's id: our interaction is "sms-<id>"
    smsc: str | None = None


@dataclass(frozen=True)
class SmsReply:
    """The answer to one text. ``command`` is None when the text matched no keyword."""

    text: str
    command: str | None
    template: str
    language: str
    segments: Segments
    interaction: str
    journey_key: str


@dataclass(frozen=True)
class _Outcome:
    template: LocalText
    context: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]


class SmsService:
    def __init__(self, config: SmsConfig, lookup: CallerLookup, actions: ActionService, journey: SmsJourney, *,
                 sender: SmsSender | None = None, clock: Clock = time.time, default_region: str = "RU",
                 limiter: SmsRateLimiter | None = None) -> None:
        self.config = config
        self.lookup = lookup
        self.actions = actions
        self.journey = journey
        self.sender = sender
        self.clock = clock
        self.default_region = default_region
        self.callers = CallerSessions(lookup)
        self.grammar = Grammar.of(config.commands, config.fallback)
        #: Per number; several controllers share one (:mod:`ivr.sms.shared_ratelimit`), else this process's own.
        self.limiter: SmsRateLimiter = limiter or InProcessWindow(
            SlidingWindowLimiter(config.limits.rate_count, config.limits.rate_window_s, clock=clock))

    # -- incoming -------------------------------------------------------------------
    async def handle(self, sms: InboundSms) -> SmsReply:
        """The reply to ``sms``; :class:`RateLimited` (nothing done, nothing stored) over the rate."""
        wait = await self.limiter.check(sms.sender)
        if wait:
            raise RateLimited(wait)
        start = await self.callers.start(sms.sender, dnis=sms.receiver)
        customer = start.customer
        key = start.journey_key
        interaction = f"sms-{sms.message_id}"
        match = self.grammar.match(sms.text)
        language = self.language_for(match, customer, sms.text)
        outcome = await self._perform(match, start, sms.sender, language, interaction)
        text, template = self.render(outcome.template, language, outcome.context)
        segments = measure(text)
        received = {"text": sms.text[:MAX_STORED_TEXT], "command": match.command.name if match.recognised else None,
                    "language": language, "to": sms.receiver}
        sent = {"text": text, "template": template, "segments": segments.count, "encoding": segments.encoding}
        events = [(SMS_RECEIVED, received), *start.events, *outcome.events, (SMS_SENT, sent)]
        await self.record(key, interaction, events)
        return SmsReply(text, match.command.name if match.recognised else None, template, language, segments,
                        interaction, key)

    async def delivery(self, report: DeliveryReport) -> None:
        """Record a delivery report; raises the store's error, so the gateway may retry."""
        data: dict[str, Any] = {"status": report.status, "code": report.code}
        if report.answer and report.status in ("failed", "rejected", "unknown"):
            data["reason"] = report.answer[:200]
        event = StampedEvent(self.clock(), CHANNEL, report.interaction, SMS_DELIVERY, data)
        await self.journey.append(report.journey_key, [event])

    # -- shared with notify -----------------------------------------------------------
    def language_for(self, match: Match | None, customer: Mapping[str, Any], text: str = "") -> str:
        """The reply language (rule in config/sms.yaml's header and docs/sms.md)."""
        cfg = self.config
        if match is not None and match.keyword_language and match.keyword_language != cfg.default_language:
            return match.keyword_language
        if (match is None or not match.recognised) and "ru" in cfg.languages and _has_cyrillic(text):
            return "ru"
        language = customer.get("language")
        return language if isinstance(language, str) and language in cfg.languages else cfg.default_language

    def render(self, template: LocalText, language: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """``(text, template name)`` within the segment budget; a broken template gives the ``failed`` reply."""
        try:
            text = template.render(language, context)
            if not text:
                raise TemplateFailed(template.name, "rendered to an empty text")
        except TemplateFailed as exc:
            log.error("SMS %s", exc)
            template = self.config.replies["failed"]
            text = template.render(language, context)
        return shorten(text, self.config.max_segments), template.name

    async def record(self, key: str, interaction: str, events: list[tuple[str, dict[str, Any]]]) -> bool:
        """Append ``events`` in one go; a store failure is logged, never raised (the reply goes anyway)."""
        now = self.clock()
        stamped = [StampedEvent(now, CHANNEL, interaction, type_, data) for type_, data in events]
        try:
            await self.journey.append(key, stamped)
        except Exception:
            log.exception("SMS %s: journey append failed; the reply is sent without its record", interaction)
            return False
        return True

    async def opted_out(self, number: str) -> bool:
        return await self.journey.kv_get(OPT_OUT_NAMESPACE, number) is not None

    # -- steps ------------------------------------------------------------------------
    async def _perform(self, match: Match, found: CallerStart, number: str, language: str,
                       interaction: str) -> _Outcome:
        command = match.command
        context: dict[str, Any] = {"customer": found.customer, "number": number, "language": language,
                                   "result": {}, "vars": {}}
        replies = self.config.replies
        if match.rejected is not None:
            assert command.argument is not None
            context["given"] = match.rejected
            return _Outcome(command.argument.invalid, context, [])
        if command.effect is not None:
            return await self._effect(command, number, context)
        if command.action is None:
            return _Outcome(command.reply, context, [])
        if found.status == "unavailable":
            return _Outcome(replies["failed"], context, [(ACTION_RESULT, {"name": command.action, "ok": False})])
        if not found.found:
            return _Outcome(replies["not_customer"], context, [])
        args = dict(command.args)
        if command.argument is not None and match.argument is not None:
            args[command.argument.name] = match.argument
            context["arg"] = match.argument
        caller = CallerContext(customer=context["customer"], caller={"number": number})
        result = await self.actions.run(command.action, args, caller, interaction=interaction)
        event = (ACTION_RESULT, {"name": command.action, "ok": result.ok, "args": _plain(args)})
        if not result.ok:
            log.info("SMS %s: action %s refused: %s", interaction, command.action, result.data.get("error"))
            context["result"] = dict(result.data)
            return _Outcome(command.failure or replies["failed"], context, [event])
        context["result"] = dict(result.data)
        return _Outcome(command.reply, context, [event])

    async def _effect(self, command: Command, number: str, context: dict[str, Any]) -> _Outcome:
        try:
            if command.effect == "opt_out":
                await self.journey.kv_put(OPT_OUT_NAMESPACE, number, {"at": self.clock()}, OPT_OUT_TTL_S)
            else:
                await self.journey.kv_delete(OPT_OUT_NAMESPACE, number)
        except Exception:
            # Telling someone who texted STOP that they are unsubscribed when they are not would be worse.
            log.exception("SMS opt-out/in for a number could not be stored")
            return _Outcome(self.config.replies["failed"], context, [])
        return _Outcome(command.reply, context, [(SMS_OPT_OUT if command.effect == "opt_out" else SMS_OPT_IN, {})])


def _has_cyrillic(text: str) -> bool:
    return any("\u0400" <= c <= "\u04ff" for c in text)


def _plain(args: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in args.items()}
