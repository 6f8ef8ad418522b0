"""Events and kv values to and from the JSON the backends store.

Every backend goes through here, so they accept and refuse the same things and give back
the same shapes: the contract suite can hold SQLite, PostgreSQL and memory to one standard.
Checks happen before anything is written, so a refused append wrote nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ivr.journey.errors import RequestInvalid
from ivr.journey.ports import KvPut, StampedEvent
from ivr.journey.redact import redact

MAX_LIMIT = 10_000
PURGE_EVERY_PUTS = 256  # kv puts between sweeps of expired entries: bounded table, negligible cost


class PurgeSchedule:
    """When a database backend sweeps expired kv entries: every :data:`PURGE_EVERY_PUTS` puts."""

    __slots__ = ("_puts",)

    def __init__(self) -> None:
        self._puts = 0

    def due_after(self, puts: int) -> bool:
        """Count ``puts`` more; True when they reach the next multiple of PURGE_EVERY_PUTS."""
        before = self._puts
        self._puts += puts
        return before // PURGE_EVERY_PUTS != self._puts // PURGE_EVERY_PUTS


class EventRow(NamedTuple):
    """One event ready for a backend: redacted, checked, ``data`` as JSON text.

    A tuple in the journey table's column order, so a backend can hand rows to its driver
    as they are (and building one costs a third of a frozen dataclass's construction).
    """

    key: str
    at: float
    channel: str
    interaction: str
    type: str
    data_json: str


def prepare(key: str, events: Sequence[StampedEvent]) -> list[EventRow]:
    """Redact and check ``events``; raises :class:`RequestInvalid` naming the first bad one.

    Every channel's every step goes through here, so the checks are written for the usual
    event (which passes them all) and the error text is built only for a bad one.
    """
    _check_text("journey key", key)
    rows = []
    for i, event in enumerate(events):
        if type(event) is not StampedEvent and not isinstance(event, StampedEvent):
            raise RequestInvalid(_what(i, event, key), f"expected a StampedEvent, got {type(event).__name__}")
        at = event.at
        if at.__class__ is not float and (not isinstance(at, (int, float)) or isinstance(at, bool)) \
                or not math.isfinite(at):
            raise RequestInvalid(_what(i, event, key), f"'at' must be a finite unix time, got {at!r}")
        channel, interaction, kind = event.channel, event.interaction, event.type
        if (channel.__class__ is not str or interaction.__class__ is not str or kind.__class__ is not str
                or not channel or not interaction or not kind
                or "\x00" in channel or "\x00" in interaction or "\x00" in kind):
            for name, value in (("channel", channel), ("interaction", interaction), ("type", kind)):
                _check_text(f"{_what(i, event, key)} {name}", value)  # raises for the first bad one
        if event.data.__class__ is not dict and not isinstance(event.data, dict):
            raise RequestInvalid(_what(i, event, key), f"'data' must be a dict, got {type(event.data).__name__}")
        clean = redact(event)
        try:
            data_json = _encode(clean.data)
        except RequestInvalid as exc:
            raise RequestInvalid(_what(i, event, key), exc.problem) from exc.__cause__
        rows.append(EventRow(key, at if at.__class__ is float else float(at), channel, interaction, kind, data_json))
    return rows


def _what(i: int, event: object, key: str) -> str:
    return f"event {i} ({getattr(event, 'type', '?')!r}) for key {key!r}"


def compact_encoder(default: Callable[[Any], Any]) -> Callable[[Any], str]:
    """A JSON encoder with the stores' settings (compact, text as is, no NaN), built once.

    ``json.dumps`` and ``JSONEncoder.encode`` build their C encoder afresh for every value:
    five to seven values per USSD request, and that set-up was half the cost of encoding
    them. ``default`` turns what JSON has no type for into what it has, or raises
    TypeError. There is no circular-reference check: the values come from our own code,
    and a cycle still ends, as a RecursionError.
    """
    make = json.encoder.c_make_encoder  # type: ignore[attr-defined]
    if make is None:  # an interpreter without the C accelerator
        fallback: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                                                          default=default).encode
        return fallback
    encoder = make(None, default, json.encoder.encode_basestring, None, ":", ",", False, False, False)

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode


def _refuse(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_to_json = compact_encoder(_refuse)


def encode(value: dict[str, Any], what: str) -> str:
    """JSON text of ``value``. NUL characters become U+FFFD: PostgreSQL's jsonb cannot hold them."""
    try:
        return _encode(value)
    except RequestInvalid as exc:
        raise RequestInvalid(what, exc.problem) from exc.__cause__


def _encode(value: dict[str, Any]) -> str:
    try:
        text = _to_json(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise RequestInvalid("data", f"data is not plain JSON ({exc})") from exc
    if "\\u0000" in text:  # rare: only then walk the value
        text = _to_json(_without_nul(value))
    return text


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_nul(v) for v in value]
    return value


def decode_event(at: float, channel: str, interaction: str, type_: str, data_json: str) -> StampedEvent:
    return StampedEvent(at, channel, interaction, type_, json.loads(data_json))


def agent_of(data_json: str | dict[str, Any]) -> str | None:
    """The agent id of an ``agent_connected`` event's data, as text; None when absent."""
    data = json.loads(data_json) if isinstance(data_json, str) else data_json
    agent = data.get("agent")
    if agent is None or isinstance(agent, (bool, dict, list)) or agent == "":
        return None
    return str(agent)


def check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise RequestInvalid("recent()", f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")


def check_window(within_s: float) -> None:
    if not isinstance(within_s, (int, float)) or not within_s >= 0:
        raise RequestInvalid("last_agent()", f"within_s must be a non-negative number, got {within_s!r}")


def kv_row(namespace: str, key: str, value: dict[str, Any], ttl_s: float, text: str | None = None) -> str:
    """Check a kv put and return the value's JSON text: ``text`` when the caller encoded
    ``value`` already (with :func:`kv_text`), else the encoding of ``value``."""
    _check_text("kv namespace", namespace)
    _check_text("kv key", key)
    what = f"kv value {namespace}/{key}"
    if not isinstance(value, dict):
        raise RequestInvalid(what, f"must be a dict, got {type(value).__name__}")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not (0 < ttl_s < math.inf):
        raise RequestInvalid(what, f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
    if text is None:
        return encode(value, what)
    if text.__class__ is not str or not (text.startswith("{") and text.endswith("}")) or "\\u0000" in text:
        raise RequestInvalid(what, "text must be the value's JSON object, as kv_text() gives it")
    return text


def put_text(put: KvPut) -> str:
    """Check one put of a ``put_and_append``, its condition too, and return the value's JSON text."""
    text = kv_row(put.namespace, put.key, put.value, put.ttl_s, put.text)
    _check_expect(put.namespace, put.key, put.expect)
    return text


def _check_expect(namespace: str, key: str, expect: str | None) -> None:
    """Refuse a :attr:`KvPut.expect` that is neither None, ABSENT ("") nor a JSON object's text."""
    if expect is None or expect == "":
        return
    if expect.__class__ is not str or not (expect.startswith("{") and expect.endswith("}")):
        raise RequestInvalid(f"kv value {namespace}/{key}", "expect must be None, ABSENT or the entry's JSON text")


def kv_text(value: dict[str, Any]) -> str:
    """The JSON text a store writes for the kv ``value`` (see :attr:`KvPut.text`)."""
    return encode(value, "kv value")


def check_kv_key(namespace: str, key: str) -> None:
    _check_text("kv namespace", namespace)
    _check_text("kv key", key)


def _check_text(what: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise RequestInvalid(what, f"must be a non-empty string, got {value!r}")
    if "\x00" in value:
        raise RequestInvalid(what, "must not contain a NUL character")
