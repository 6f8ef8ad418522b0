"""What an agent does back: a note and a wrap-up code, a transfer, an expert pulled in.

Every action is checked here and lands in the customer's journey like any other event, so
the next agent, the expert and the KPIs see it. Notes are the agent's own words: limited
in length, stripped of control characters, with card numbers and spelled-out secrets
replaced (:func:`ivr.journey.redact.redact_text`); the pages escape them like any text.
Transfers and consultations go to the PBX through :class:`~ivr.agent.ports.CallControl`;
the hop itself is journaled by the voice layer when Asterisk reports it (a REFER from the
phone and a transfer asked here become the same event), with the reason given here.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass

from ivr.agent.ports import CallControl, JourneyWriter
from ivr.agent.wrapup import WrapupCodes
from ivr.journey import events as E
from ivr.journey.ports import StampedEvent
from ivr.journey.redact import redact_text
from ivr.journey.tokens import ContextClaim

MAX_NOTE_CHARS = 1000
MAX_REASON_CHARS = 200
AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
QUEUE_OR_AGENT = re.compile(r"[a-z][a-z0-9_-]{0,39}")
NUMBER = re.compile(r"\+?[0-9]{3,15}")
TRANSFER_MODES = ("blind", "attended")
AGENT_PREFIX = "agent:"


class RequestRefused(Exception):
    """The agent's request is not valid: which field, why, and what would be (for the desktop)."""

    def __init__(self, field: str, message: str, allowed: Collection[str] = ()) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.allowed = tuple(allowed)

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"error": "invalid", "field": self.field, "message": self.message}
        if self.allowed:
            body["allowed"] = list(self.allowed)
        return body


@dataclass(frozen=True)
class Note:
    agent: str
    text: str
    wrapup: str | None
    redacted: tuple[str, ...]


def clean_text(text: object, field: str, limit: int) -> str:
    """Printable text of at most ``limit`` characters; line breaks and tabs kept, other controls dropped."""
    if not isinstance(text, str):
        raise RequestRefused(field, "must be text")
    kept = "".join(ch for ch in unicodedata.normalize("NFC", text)
                   if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()
    if len(kept) > limit:
        raise RequestRefused(field, f"is {len(kept)} characters; at most {limit}")
    return kept


def agent_name(value: object) -> str:
    if not isinstance(value, str) or not AGENT_NAME.fullmatch(value):
        raise RequestRefused("agent", "must name the agent (letters, digits, '.', '_', '-'; 40 at most)")
    return value


def destination(value: object, queues: Collection[str]) -> str:
    """What the dialplan's transfer context dials, as a phone's REFER names it.

    ``experts`` (a queue of queues.conf), ``agent:agent2`` (an agent's phone), or
    ``+79990001122`` (an outside number)."""
    if isinstance(value, str) and NUMBER.fullmatch(value):
        return value
    if isinstance(value, str) and value.startswith(AGENT_PREFIX):
        name = value[len(AGENT_PREFIX):]
        if QUEUE_OR_AGENT.fullmatch(name):
            return name
    elif isinstance(value, str) and value in queues:
        return value
    elif isinstance(value, str) and QUEUE_OR_AGENT.fullmatch(value):
        raise RequestRefused("to", f"there is no queue '{value}' (an agent is 'agent:NAME')", sorted(queues))
    raise RequestRefused("to", "must be a queue, 'agent:NAME' or a phone number")


def destination_kind(value: object) -> str:
    """queue, agent or number, for a ``to`` that :func:`destination` accepted."""
    if isinstance(value, str) and NUMBER.fullmatch(value):
        return "number"
    return "agent" if isinstance(value, str) and value.startswith(AGENT_PREFIX) else "queue"


class AgentDesk:
    def __init__(self, journey: JourneyWriter, wrapup: WrapupCodes, *, control: CallControl | None = None,
                 queues: Collection[str] = (), clock: Callable[[], float] = time.time) -> None:
        self.journey = journey
        self.wrapup = wrapup
        self.control = control
        self.queues = frozenset(queues)
        self.clock = clock

    async def note(self, claim: ContextClaim, body: dict[str, object]) -> Note:
        """Store the agent's note and wrap-up code for the claim's interaction."""
        agent = agent_name(body.get("agent"))
        text, found = redact_text(clean_text(body.get("text", ""), "text", MAX_NOTE_CHARS))
        wrapup = body.get("wrapup")
        codes = self.wrapup.for_queue(claim.queue)
        if wrapup is not None and wrapup not in codes:
            raise RequestRefused("wrapup", f"not a wrap-up code of queue '{claim.queue}'", codes)
        if not text and wrapup is None:
            raise RequestRefused("text", "a note needs text, a wrap-up code, or both")
        data: dict[str, object] = {"agent": agent, "text": text, "wrapup": wrapup, "queue": claim.queue}
        if found:
            data["redacted"] = found
        await self.journey.append(claim.customer_key, [
            StampedEvent(self.clock(), claim.channel, claim.interaction, E.AGENT_NOTE, data)])
        return Note(agent, text, wrapup if isinstance(wrapup, str) else None, tuple(found))

    def _control(self, claim: ContextClaim) -> CallControl:
        if self.control is None or claim.channel != E.VOICE:
            raise RequestRefused("token", "only a call can be transferred or conferenced")
        return self.control

    async def transfer(self, claim: ContextClaim, body: dict[str, object]) -> dict[str, object]:
        control = self._control(claim)
        agent = agent_name(body.get("agent"))
        to = destination(body.get("to"), self.queues)
        mode = body.get("mode", "blind")
        if mode not in TRANSFER_MODES:
            raise RequestRefused("mode", "must be blind or attended", TRANSFER_MODES)
        reason = clean_text(body.get("reason", ""), "reason", MAX_REASON_CHARS)
        if mode == "attended":  # consult first; the agent completes by conferencing and hanging up
            room = await control.consult(claim.interaction, agent, to)
            return {"status": "consulting", "to": to, "room": room}
        await control.transfer(claim.interaction, agent, to, reason, destination_kind(body.get("to")))
        return {"status": "transferred", "to": to}

    async def consult(self, claim: ContextClaim, body: dict[str, object]) -> dict[str, object]:
        control = self._control(claim)
        room = await control.consult(claim.interaction, agent_name(body.get("agent")),
                                     destination(body.get("to"), self.queues))
        return {"status": "consulting", "room": room}

    async def conference(self, claim: ContextClaim, body: dict[str, object]) -> dict[str, object]:
        await self._control(claim).conference(claim.interaction, agent_name(body.get("agent")))
        return {"status": "conference"}
