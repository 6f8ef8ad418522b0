"""Events from other systems into a customer's journey (``POST /context/events``).

The web site says the customer read the roaming page this morning; the help desk says
the ticket from yesterday's call is resolved. Each such event lands in the same journey
as calls, USSD sessions and SMS, so the agent of the next call sees it and the KPIs count
it by channel. An event is checked against the registry (the kinds its channel may
carry), bounded (text, link, time), and stored at most once per client and event id:
the id is claimed in the same write as the append (compare-and-set on
``context_event/<client>/<id>``), so a client that retries after a timeout never adds a
second copy, even when both copies arrive at once on two controllers.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ivr.agent.access_config import Client
from ivr.crm.numbers import normalise
from ivr.crm.ports import CallerLookup
from ivr.journey import events as E
from ivr.journey.errors import WriteConflict
from ivr.journey.ports import ABSENT, KvPut, StampedEvent
from ivr.ratelimit import SlidingWindowLimiter

NAMESPACE = "context_event"
SEEN_TTL_S = 30 * 86400.0  # an id is remembered this long: longer than any client retries
MAX_TEXT_CHARS = 1000
MAX_LINK_CHARS = 500
MAX_PAST_S = 30 * 86400.0  # older events are history imports, not context: refused
MAX_FUTURE_S = 300.0  # clock skew allowed
FIELDS = frozenset({"id", "customer", "number", "channel", "kind", "text", "link", "topic", "session", "at"})
_ID = re.compile(r"[A-Za-z0-9._:@/-]{1,100}")
CUSTOMER_ID = re.compile(r"[A-Za-z0-9._:@-]{1,64}")
_TOPIC = re.compile(r"[a-z0-9_-]{1,40}")


class IntakeRefused(Exception):
    """The event cannot be taken; ``status`` is the HTTP answer, ``field`` what to fix."""

    def __init__(self, status: int, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        out = {"error": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


@dataclass(frozen=True)
class Accepted:
    stored: bool  # False: this client sent this id before; nothing was added
    interaction: str


class IntakeStore(Protocol):
    async def put_and_append(self, puts: list[KvPut], key: str, events: list[StampedEvent]) -> None: ...


class CustomerKeys(Protocol):
    async def key_for_number(self, number: str) -> str:
        """The journey key of ``number``: the customer's id, or the number when not a customer.
        :class:`IntakeRefused` (503) when the CRM cannot say."""
        ...


class LookupKeys:
    """:class:`CustomerKeys` by the CRM lookup every channel uses, so keys agree with calls."""

    def __init__(self, lookup: CallerLookup) -> None:
        self.lookup = lookup

    async def key_for_number(self, number: str) -> str:
        result = await self.lookup.lookup(number)
        if result.customer is not None:
            return str(result.customer.id)
        if result.status == "unavailable" or result.number is None:
            raise IntakeRefused(503, "unavailable", "the CRM cannot say whose number this is now; retry later")
        return result.number


class EventIntake:
    def __init__(self, store: IntakeStore, keys: CustomerKeys, *, default_region: str = "RU",
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.keys = keys
        self.default_region = default_region
        self.clock = clock
        self._limits: dict[str, SlidingWindowLimiter] = {}

    def retry_after(self, client: Client) -> float:
        """Count one request of ``client``: 0 if it may go on, else seconds until it may."""
        limiter = self._limits.get(client.name)
        if limiter is None:
            limiter = self._limits[client.name] = SlidingWindowLimiter(client.rate_per_minute, 60.0, clock=self.clock,
                                                                        max_numbers=1)
        return limiter.check(client.name)

    async def accept(self, client: Client, payload: Any) -> Accepted:
        """Check and store one event; :class:`IntakeRefused` says what is wrong."""
        event, customer, number = self._event(client, payload)
        key = customer if customer else await self.keys.key_for_number(number)
        seen = KvPut(NAMESPACE, f"{client.name}/{event.data['event_id']}",
                     {"key": key, "at": event.at}, SEEN_TTL_S, expect=ABSENT)
        try:
            await self.store.put_and_append([seen], key, [event])
        except WriteConflict:
            return Accepted(False, event.interaction)
        return Accepted(True, event.interaction)

    # -- checking ---------------------------------------------------------------------------

    def _event(self, client: Client, payload: Any) -> tuple[StampedEvent, str, str]:
        """The event, and who it is for: the customer id as given, or else the E.164 number."""
        if not isinstance(payload, Mapping):
            raise IntakeRefused(422, "invalid", "send one event as a JSON object")
        unknown = sorted(str(k) for k in payload if k not in FIELDS)
        if unknown:
            raise IntakeRefused(422, "invalid", f"unknown field '{unknown[0]}' (fields: {', '.join(sorted(FIELDS))})",
                                unknown[0])
        event_id = _text(payload, "id", required=True)
        if not _ID.fullmatch(event_id):
            raise IntakeRefused(422, "invalid", "id: 1-100 letters, digits and ._:@/-", "id")
        channel = _text(payload, "channel", required=True)
        if channel not in client.channels:
            raise IntakeRefused(403, "channel_not_allowed", f"this client may write {', '.join(sorted(client.channels))}"
                                                            f", not '{channel[:20]}'", "channel")
        kind = _text(payload, "kind", required=True)
        allowed = E.external_kinds(channel)
        if kind not in allowed:
            raise IntakeRefused(422, "invalid", f"kind '{kind[:40]}' is not an event of channel {channel} "
                                                f"({', '.join(sorted(allowed))})", "kind")
        customer, number = self._who(payload)
        data: dict[str, Any] = {"client": client.name, "event_id": event_id}
        text = _clean(_text(payload, "text"))
        if len(text) > MAX_TEXT_CHARS:
            raise IntakeRefused(422, "invalid", f"text: at most {MAX_TEXT_CHARS} characters", "text")
        if text:
            data["text"] = text
        link = _text(payload, "link")
        if link:
            if len(link) > MAX_LINK_CHARS or not link.startswith(("https://", "http://")) \
                    or any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in link):
                raise IntakeRefused(422, "invalid", f"link: an http(s) URL of at most {MAX_LINK_CHARS} characters",
                                    "link")
            data["link"] = link
        topic = _text(payload, "topic")
        if topic:
            if not _TOPIC.fullmatch(topic):
                raise IntakeRefused(422, "invalid", "topic: 1-40 lower-case letters, digits, _ and -", "topic")
            data["topic"] = topic
        session = _text(payload, "session")
        if session and not _ID.fullmatch(session):
            raise IntakeRefused(422, "invalid", "session: 1-100 letters, digits and ._:@/-", "session")
        interaction = f"{channel}:{client.name}:{session or event_id}"
        return StampedEvent(self._at(payload), channel, interaction, kind, data), customer, number

    def _who(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        """``(customer id, "")`` or ``("", E.164 number)``."""
        customer, number = _text(payload, "customer"), _text(payload, "number")
        if bool(customer) == bool(number):
            raise IntakeRefused(422, "invalid", "give exactly one of customer (the CRM id) and number", "customer")
        if customer:
            if not CUSTOMER_ID.fullmatch(customer):
                raise IntakeRefused(422, "invalid", "customer: 1-64 letters, digits and ._:@-", "customer")
            return customer, ""
        e164 = normalise(number, self.default_region)
        if e164 is None:
            raise IntakeRefused(422, "invalid", "number: not a phone number", "number")
        return "", e164

    def _at(self, payload: Mapping[str, Any]) -> float:
        now = self.clock()
        raw = payload.get("at")
        if raw is None:
            return now
        if isinstance(raw, bool):
            raise IntakeRefused(422, "invalid", "at: a unix time or an ISO 8601 time with its zone", "at")
        if isinstance(raw, (int, float)):
            at = float(raw)
        elif isinstance(raw, str):
            try:
                parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                raise IntakeRefused(422, "invalid", "at: a unix time or an ISO 8601 time with its zone", "at") from None
            if parsed.tzinfo is None:
                raise IntakeRefused(422, "invalid", "at: give the time zone (Z or +03:00)", "at")
            at = parsed.timestamp()
        else:
            raise IntakeRefused(422, "invalid", "at: a unix time or an ISO 8601 time with its zone", "at")
        if not now - MAX_PAST_S <= at <= now + MAX_FUTURE_S:
            raise IntakeRefused(422, "invalid", "at: within the last 30 days (and not in the future)", "at")
        return at


def _text(payload: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise IntakeRefused(422, "invalid", f"{name} is required", name)
        return ""
    if not isinstance(value, str):
        raise IntakeRefused(422, "invalid", f"{name} must be text", name)
    return value


def _clean(text: str) -> str:
    """Control and format characters become spaces: the text is shown to an agent as it is."""
    cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)
    return " ".join(cleaned.split())
