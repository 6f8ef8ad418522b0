"""USSD session state in the journey store's kv table, so any gateway process can serve the next request.

An engine :class:`~ivr.flow.engine.Session` cannot be serialised, and need not be: the
engine is deterministic, so a session is fully described by what went into it. The
record keeps exactly that:

- the caller context as it was when the session began (customer fields, number, the
  time fields): the menus the subscriber saw depended on it, so it is frozen, like a
  voice call's context, even if the CRM changes meanwhile (after "turn caller ID on");
- the entry node and the tree version it ran on;
- the engine inputs in order (preset inputs of the code first), and
- the result of every action the session ran, in order, fed back on replay so no
  action ever runs twice.

A masked input (a PIN) is not stored: the record keeps the index of the input in the
request's ``text``, which the aggregator sends whole with every request, and the stored
copy of the last ``text`` has it blanked.
Plus what answers a repeated request without replaying anything: the last ``text`` and
the reply it got. Values the engine reads that JSON cannot hold (``Decimal`` money,
dates) are tagged, so a replay sees exactly the values the first run saw.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Literal

from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult
from ivr.journey.codec import compact_encoder, kv_text
from ivr.journey.errors import WriteConflict
from ivr.journey.ports import ABSENT, Clock, JourneyStore, KvPut, StampedEvent
from ivr.ussd.config import SessionPolicy
from ivr.ussd.protocol import SEPARATOR, UssdReply, split_text

log = logging.getLogger(__name__)

NAMESPACE = "ussd"  # records, by sessionId
RESUME_NAMESPACE = "ussd_resume"  # the subscriber's last resumable session, by E.164 number
RECORD_VERSION = 2  # 2: the context is stored as JSON text
#: Records this process saved or read, answered without a read (see :class:`SessionStore`):
#: the usual next request of a session reaches the process that answered the last one.
RECORD_CACHE = 10_000

State = Literal["run", "offer", "done"]
RUN: State = "run"  # the engine runs the session
OFFER: State = "offer"  # the resume offer is on screen
DONE: State = "done"  # answered by the gateway alone (balance, try later): the stored reply is final

Input = str | int
"""An engine input: the typed text, or (masked) the index of the input in the request's ``text``."""


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    code: str
    number: str  # E.164
    journey_key: str  # customer id, or the number for a subscriber the CRM does not know
    tree: str  # the tree version the session runs on
    context: CallerContext
    state: State
    created: float
    updated: float
    entry: str | None = None
    inputs: tuple[Input, ...] = ()
    preset: int = 0  # how many of ``inputs`` came from the service code, not the subscriber
    results: tuple[ActionResult, ...] = ()
    last_text: str = ""
    reply: UssdReply = UssdReply(True, "")
    page: int = 0
    finished: bool = False  # the engine session ended (its END screen may still have pages)
    node: str | None = None  # where the engine waits, for the journey of a timed-out session
    offer_from: str | None = None  # the session the resume offer would continue
    resume_until: float = 0.0  # until when the resume pointer to this record is known to live
    # The context as its stored JSON text: the context never changes during a session, so
    # it is encoded once, and the record's JSON carries it as one string (copying a string
    # costs nothing next to encoding and decoding the customer's fields every request).
    context_data: str | None = field(default=None, compare=False, repr=False)
    # The kv text this record was read from or saved as (None: never stored). Its next save
    # is a compare-and-set on it, so a record another process moved on is never overwritten.
    stored_text: str | None = field(default=None, compare=False, repr=False)

    @property
    def resumable(self) -> bool:
        """Broke off mid-menu, it could be continued: the subscriber had typed something, no PIN."""
        return (self.state == RUN and not self.finished and len(self.inputs) > self.preset
                and all(isinstance(i, str) for i in self.inputs))

    @property
    def masked_positions(self) -> frozenset[int]:
        """Where in ``text`` the masked inputs are: blanked in the stored ``last_text`` too."""
        return frozenset(i for i in self.inputs if isinstance(i, int))

    def advance(self, **changes: Any) -> SessionRecord:
        """A copy with ``changes``; a new context drops the cached JSON of the old one.

        Not :func:`dataclasses.replace`: that re-runs ``__init__`` over twenty fields, and a
        record changes several times in every request.
        """
        unknown = changes.keys() - _FIELDS
        if unknown:
            raise TypeError(f"SessionRecord has no field {', '.join(sorted(unknown))}")
        if "context" in changes and "context_data" not in changes:
            changes["context_data"] = None
        copy = object.__new__(SessionRecord)
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(changes)
        return copy


_FIELDS = frozenset(f.name for f in fields(SessionRecord))


class SessionStore:
    """Records and resume pointers in the journey store's kv table, saved with the journey.

    Optimistic: a record this process saved or read is answered from memory, without a
    read, and every save is a compare-and-set on the text the record came from
    (:attr:`SessionRecord.stored_text`). When another process (or a retry sent to it)
    moved the session on meanwhile, the save writes nothing and raises
    :class:`~ivr.journey.errors.WriteConflict`; the gateway then reads the record afresh
    and answers from it. Nothing is ever stored on the strength of a stale record.
    """

    def __init__(self, kv: JourneyStore, policy: SessionPolicy, *, cache: int = RECORD_CACHE,
                 clock: Clock = time.time) -> None:
        self._kv = kv
        self.policy = policy
        self._known: OrderedDict[str, SessionRecord] = OrderedDict()
        self._cache = cache
        self._clock = clock

    def known(self, session_id: str, *, trust: Callable[[SessionRecord], bool] | None = None) -> SessionRecord | None:
        """The record this process last saved or read, if it may stand in for a read: within
        the stored entry's lifetime and accepted by ``trust``. It may be stale: saving it
        cannot be, and :meth:`still_stored` tells before anything that cannot be undone."""
        known = self._known.get(session_id)
        if (known is not None and self._clock() < known.updated + self.policy.retain_s
                and (trust is None or trust(known))):
            return known  # not past the stored entry's lifetime either (it was saved at ``updated``)
        return None

    def forget(self, session_id: str) -> None:
        """Drop the record known here: the next load reads what is stored."""
        self._known.pop(session_id, None)

    async def still_stored(self, record: SessionRecord) -> bool:
        """Whether ``record`` is the one stored now (no other process moved the session on)."""
        text = await self._kv.kv_get_text(NAMESPACE, record.session_id)
        if text is None or record.stored_text is None:
            return False
        if text == record.stored_text:
            return True
        try:  # PostgreSQL gives back its own rendering of the same JSON
            return bool(json.loads(text) == json.loads(record.stored_text))
        except ValueError:
            return False

    async def load(self, session_id: str, *, fresh: bool = False) -> SessionRecord | None:
        """The session's record: :meth:`known` (unless ``fresh``), else the stored one."""
        known = None if fresh else self.known(session_id)
        if known is not None:
            return known
        known = self._known.get(session_id)
        text = await self._kv.kv_get_text(NAMESPACE, session_id)
        if text is None:
            self._known.pop(session_id, None)
            return None
        if known is not None and known.stored_text == text:
            return known
        try:
            value = json.loads(text)
            if not isinstance(value, dict):
                raise TypeError(f"the record is a JSON {type(value).__name__}")
            record = decode_record(value).advance(stored_text=text)
        except (KeyError, TypeError, ValueError, InvalidOperation, RecursionError) as exc:
            # Written by another version, or damaged: the session cannot go on, a new one can.
            log.warning("USSD session %s: unreadable record (%s); treating it as unknown", session_id[:16], exc)
            return None
        self._remember(record)
        return record

    async def save(self, record: SessionRecord, now: float, events: Sequence[StampedEvent] = ()) -> None:
        """Store ``record`` and append ``events`` to its journey, as one write.

        The record becomes the one a new dial from its number offers to continue. The resume
        pointer is written once per session (again only if the session outlives it); the
        record's own ``updated`` time decides whether an offer is still in its window.
        """
        policy = self.policy
        puts = []
        if record.resumable and policy.resume_window_s > 0 and record.resume_until < now + policy.resume_window_s:
            ttl = policy.resume_window_s + policy.timeout_s
            record = record.advance(resume_until=now + ttl)
            puts.append(KvPut(RESUME_NAMESPACE, record.number, {"session": record.session_id}, ttl))
        data = encode_record(record)
        text = kv_text(data)
        expect = record.stored_text if record.stored_text is not None else ABSENT
        puts.append(KvPut(NAMESPACE, record.session_id, data, policy.retain_s, text, expect))
        try:
            await self._kv.put_and_append(puts, record.journey_key, events)
        except WriteConflict:
            self.forget(record.session_id)
            raise
        # What a load of ``data`` would give: the stored text has the masked inputs blanked.
        self._remember(record.advance(last_text=data["text"], context_data=data["ctx"], stored_text=text))

    def _remember(self, record: SessionRecord) -> None:
        if self._cache <= 0:
            return
        self._known[record.session_id] = record
        self._known.move_to_end(record.session_id)
        if len(self._known) > self._cache:
            self._known.popitem(last=False)

    async def resume_target(self, number: str) -> str | None:
        """The session id the subscriber's last resumable session ran under, if any."""
        value = await self._kv.kv_get(RESUME_NAMESPACE, number)
        target = value.get("session") if value else None
        return target if isinstance(target, str) and target else None

    async def forget_resume(self, number: str) -> None:
        await self._kv.kv_delete(RESUME_NAMESPACE, number)


# -- the record as JSON --------------------------------------------------------------------


def encode_record(r: SessionRecord) -> dict[str, Any]:
    data: dict[str, Any] = {
        "v": RECORD_VERSION,
        "sid": r.session_id,
        "code": r.code,
        "number": r.number,
        "key": r.journey_key,
        "tree": r.tree,
        "ctx": r.context_data if r.context_data is not None else context_json(r.context),
        "state": r.state,
        "created": r.created,
        "updated": r.updated,
        "inputs": list(r.inputs),
        "preset": r.preset,
        "results": [_result_json(a) for a in r.results],
        "text": blank(r.last_text, r.masked_positions),
        "reply": r.reply.render(),
    }
    optional = {"entry": r.entry, "page": r.page, "finished": r.finished, "node": r.node,
                "offer_from": r.offer_from, "resume_until": r.resume_until}
    data.update({k: v for k, v in optional.items() if v})
    return data


def context_json(context: CallerContext) -> str:
    """The context as JSON, its values tagged as :func:`encode_value` tags them.

    Written by one prebuilt C encoder whose hook tags money, dates and other mappings as it
    meets them: the customer's fields are walked once, in C, not first copied in Python."""
    return _context_to_json({"customer": context.customer, "caller": context.caller, "dnis": context.dnis,
                             "now": context.now})


def decode_record(data: Mapping[str, Any]) -> SessionRecord:
    if data.get("v") != RECORD_VERSION:
        raise ValueError(f"record version {data.get('v')!r}")
    ctx_text = data["ctx"]
    if not isinstance(ctx_text, str):
        raise TypeError(f"ctx {type(ctx_text).__name__}")
    ctx = json.loads(ctx_text)
    if not isinstance(ctx, dict):
        raise TypeError(f"ctx holds {type(ctx).__name__}")
    state = data["state"]
    if state not in (RUN, OFFER, DONE):
        raise ValueError(f"state {state!r}")
    inputs = tuple(_input(i) for i in data["inputs"])
    results = tuple(_result_of(item) for item in data["results"])
    return SessionRecord(
        session_id=str(data["sid"]),
        code=str(data["code"]),
        number=str(data["number"]),
        journey_key=str(data["key"]),
        tree=str(data["tree"]),
        context=CallerContext(customer=_frozen(decode_value(ctx["customer"])),
                              caller=_frozen(decode_value(ctx["caller"])),
                              dnis=None if ctx.get("dnis") is None else str(ctx["dnis"]),
                              now=_frozen(decode_value(ctx["now"]))),
        state=state,
        created=float(data["created"]),
        updated=float(data["updated"]),
        entry=data.get("entry"),
        inputs=inputs,
        preset=int(data["preset"]),
        results=results,
        last_text=str(data["text"]),
        reply=UssdReply.parse(str(data["reply"])),
        page=int(data.get("page", 0)),
        finished=bool(data.get("finished", False)),
        node=data.get("node"),
        offer_from=data.get("offer_from"),
        resume_until=float(data.get("resume_until", 0.0)),
        context_data=ctx_text,
    )


def blank(text: str, positions: frozenset[int]) -> str:
    """``text`` with the inputs at ``positions`` emptied: a PIN is not kept, even as history."""
    if not positions:
        return text
    return SEPARATOR.join("" if i in positions else v for i, v in enumerate(split_text(text)))


def _input(value: Any) -> Input:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"input {type(value).__name__}")
    return value


def _frozen(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return MappingProxyType(value)


_DECIMAL = "$dec"
_DATE = "$date"
_DATETIME = "$datetime"


_PLAIN = frozenset({str, int, float, bool, type(None)})


def encode_value(value: Any) -> Any:
    """JSON for a template value, tagging what JSON would turn into another type."""
    if type(value) in _PLAIN:
        return value  # most values: nothing to tag, and no ABC check for Mapping
    if isinstance(value, Decimal):
        return {_DECIMAL: str(value)}
    if isinstance(value, dt.datetime):
        return {_DATETIME: value.isoformat()}
    if isinstance(value, dt.date):
        return {_DATE: value.isoformat()}
    if isinstance(value, Mapping):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [encode_value(v) for v in items]
    return value


def _tag(value: Any) -> Any:
    """The C encoder's hook for what JSON has no type for: :func:`encode_value`'s tags."""
    if isinstance(value, (Decimal, dt.date)):
        return encode_value(value)
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_context_to_json = compact_encoder(_tag)


def decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, text), = value.items()
            if tag == _DECIMAL:
                return Decimal(text)
            if tag == _DATE:
                return dt.date.fromisoformat(text)
            if tag == _DATETIME:
                return dt.datetime.fromisoformat(text)
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def results_of(values: Sequence[ActionResult]) -> tuple[ActionResult, ...]:
    """Action results as the record keeps them: data (and the refreshed customer) copied and frozen."""
    return tuple(ActionResult(r.name, r.ok, MappingProxyType(dict(r.data)),
                              None if r.customer is None else MappingProxyType(dict(r.customer))) for r in values)


def _result_json(result: ActionResult) -> list[Any]:
    """``[name, ok, data]``, plus the customer as the action left them when it changed them,
    so a replayed session shows the same menus the live one did."""
    out = [result.name, result.ok, encode_value(result.data)]
    if result.customer is not None:
        out.append(encode_value(result.customer))
    return out


def _result_of(item: Sequence[Any]) -> ActionResult:
    name, ok, values, *customer = item
    return ActionResult(str(name), bool(ok), MappingProxyType(dict(decode_value(values))),
                        MappingProxyType(dict(decode_value(customer[0]))) if customer else None)
