"""The aggregator's wire format (Africa's Talking style), translated at once into our types.

A request is a form (or a JSON object) with ``sessionId``, ``serviceCode``,
``phoneNumber``, ``networkCode`` and ``text``: every input of the session so far joined
with ``*`` (``""`` on the first request, then ``"3"``, ``"3*1"``...). The answer is
``text/plain``: ``CON <screen>`` keeps the session open, ``END <screen>`` closes it.

This is the only module that knows field names, encodings and the ``*`` separator.
Everything here is hostile input: sizes are bounded before parsing, invalid UTF-8,
control characters, duplicated fields and numbers that do not parse are refused with a
:class:`BadRequest` naming the field, never echoing the value.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ivr.crm.numbers import normalise
from ivr.ussd.errors import BadRequest

SESSION_ID = "sessionId"
SERVICE_CODE = "serviceCode"
PHONE_NUMBER = "phoneNumber"
NETWORK_CODE = "networkCode"
TEXT = "text"
STATUS = "status"  # the end-of-session notification's fields
DURATION = "durationInMillis"
HOPS = "hopsCount"
ERROR_MESSAGE = "errorMessage"
#: The aggregator's final status of a session, in our words.
END_STATUSES = {"Success": "success", "Incomplete": "incomplete", "Failed": "failed"}
MAX_NOTE = 160  # characters of the aggregator's errorMessage kept

SEPARATOR = "*"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

MAX_SESSION_ID = 128
MAX_NETWORK_CODE = 16
MAX_FIELDS = 32  # a form with more fields than this is not from an aggregator
_SESSION_ID = re.compile(rf"^[!-~]{{1,{MAX_SESSION_ID}}}$")  # printable ASCII, no space
_CODE = re.compile(r"^\*[0-9]+(\*[0-9]+)*#?$")
_NETWORK = re.compile(rf"^[0-9A-Za-z_.-]{{0,{MAX_NETWORK_CODE}}}$")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn"})  # control, surrogate, private use, unassigned


@dataclass(frozen=True, slots=True)
class UssdRequest:
    """One aggregator request, validated. ``number`` is E.164; ``inputs`` is ``text`` split on ``*``."""

    session_id: str
    service_code: str  # always ends in '#'
    number: str
    network: str
    text: str
    inputs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UssdReply:
    """A screen and whether it ends the session (``END``) or waits for an answer (``CON``)."""

    end: bool
    screen: str

    def render(self) -> str:
        return ("END " if self.end else "CON ") + self.screen

    @classmethod
    def parse(cls, rendered: str) -> UssdReply:
        """The reply :meth:`render` produced (replies are stored rendered, for repeated requests)."""
        if rendered.startswith("END "):
            return cls(True, rendered[4:])
        if rendered.startswith("CON "):
            return cls(False, rendered[4:])
        raise ValueError("not a rendered USSD reply")


@dataclass(frozen=True, slots=True)
class UssdSessionEnd:
    """The aggregator's end-of-session notification, validated.

    Only what the journey needs is kept. ``input`` and ``lastAppResponse`` are not read:
    the journey already has every key and screen, and ``input`` may hold a PIN.
    """

    session_id: str
    service_code: str
    number: str  # E.164
    status: str  # success | incomplete | failed
    duration_ms: int | None
    hops: int | None
    error: str  # the aggregator's errorMessage, at most MAX_NOTE characters; "" when none


def split_text(text: str) -> tuple[str, ...]:
    """The inputs in ``text``; ``""`` is no input at all (the first request of a session)."""
    return tuple(text.split(SEPARATOR)) if text else ()


def parse_request(content_type: str, body: bytes, *, max_text: int, default_region: str = "RU") -> UssdRequest:
    """The request in ``body``, a form or a JSON object; :class:`BadRequest` for anything else."""
    return request_from_fields(_fields(content_type, body), max_text=max_text, default_region=default_region)


def parse_session_end(content_type: str, body: bytes, *, default_region: str = "RU") -> UssdSessionEnd:
    """The end-of-session notification in ``body`` (form or JSON); :class:`BadRequest` otherwise."""
    fields = _fields(content_type, body)
    for name in (SESSION_ID, SERVICE_CODE, PHONE_NUMBER, STATUS, DURATION, HOPS):
        if name in fields:
            _check_characters(name, fields[name])
    session_id = _session_id(fields)
    code = _service_code(fields)
    number = _number(_required(fields, PHONE_NUMBER), default_region)
    status = END_STATUSES.get(_required(fields, STATUS).strip())
    if status is None:
        raise BadRequest(f"must be one of {', '.join(END_STATUSES)}", field=STATUS)
    # The aggregator's own words, kept as a note: made printable rather than refused.
    error = " ".join("".join(c if c.isprintable() else " " for c in fields.get(ERROR_MESSAGE, "")).split())
    return UssdSessionEnd(session_id, code, number, status, _count(fields, DURATION), _count(fields, HOPS),
                          error[:MAX_NOTE])


def _fields(content_type: str, body: bytes) -> dict[str, str]:
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None
    if content_type == JSON:
        fields = _json_fields(decoded)
    elif content_type in (FORM, "", "application/octet-stream"):
        fields = _form_fields(decoded)
    else:
        raise BadRequest("send a form (application/x-www-form-urlencoded) or JSON (application/json)",
                         field="Content-Type")
    return fields


def request_from_fields(fields: Mapping[str, str], *, max_text: int, default_region: str = "RU") -> UssdRequest:
    """Validate the protocol fields (already decoded text) into a :class:`UssdRequest`."""
    for name, value in fields.items():
        if name in (SESSION_ID, SERVICE_CODE, PHONE_NUMBER, NETWORK_CODE, TEXT):
            _check_characters(name, value)
    session_id = _session_id(fields)
    code = _service_code(fields)
    number = _number(_required(fields, PHONE_NUMBER), default_region)
    network = fields.get(NETWORK_CODE, "").strip()
    if not _NETWORK.match(network):
        raise BadRequest(f"must be up to {MAX_NETWORK_CODE} letters or digits", field=NETWORK_CODE)
    text = fields.get(TEXT, "")
    if len(text) > max_text:
        raise BadRequest(f"longer than {max_text} characters", field=TEXT)
    return UssdRequest(session_id, code, number, network, text, split_text(text))


def _session_id(fields: Mapping[str, str]) -> str:
    session_id = _required(fields, SESSION_ID)
    if not _SESSION_ID.match(session_id):
        raise BadRequest(f"must be 1 to {MAX_SESSION_ID} printable ASCII characters without spaces",
                         field=SESSION_ID)
    return session_id


def _service_code(fields: Mapping[str, str]) -> str:
    code = _required(fields, SERVICE_CODE).strip()
    if len(code) > 32 or not _CODE.match(code):
        raise BadRequest("must be a USSD code like *100# or *111*2#", field=SERVICE_CODE)
    return code if code.endswith("#") else code + "#"


def _count(fields: Mapping[str, str], name: str) -> int | None:
    """An optional whole number (milliseconds, hops); absent or empty is None."""
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise BadRequest("must be a whole number", field=name)
    return int(raw)


def _number(raw: str, region: str) -> str:
    number = normalise(raw.strip(), region)
    if number is None and raw.startswith(" "):
        # A '+' sent unescaped in a form arrives as a space: "+7999..." -> " 7999...".
        number = normalise("+" + raw.strip(), region)
    if number is None:
        raise BadRequest("not a phone number", field=PHONE_NUMBER)
    return number


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None or not value.strip():
        raise BadRequest("missing", field=name)
    return value


def _check_characters(name: str, value: str) -> None:
    if value.isascii() and value.isprintable():
        return  # the usual request: digits, '*' and '#'
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise BadRequest("contains control or unassigned characters", field=name)


def _form_fields(text: str) -> dict[str, str]:
    """The form's fields, as :func:`urllib.parse.parse_qsl` would read them (blank values
    kept, a name without ``=`` has the empty value), with duplicates refused.

    Written out rather than calling ``parse_qsl``: an aggregator's form is five short
    fields, mostly digits, that need no unquoting, and ``parse_qsl`` unquotes every one
    (a tenth of a request's cost)."""
    parts = text.split("&") if text else []
    if len(parts) > MAX_FIELDS:
        raise BadRequest(f"more than {MAX_FIELDS} form fields")
    fields: dict[str, str] = {}
    for part in parts:
        if not part:
            continue
        name, _, value = part.partition("=")
        name, value = _unquote(name), _unquote(value)
        if name in fields:
            raise BadRequest("given twice", field=name)
        fields[name] = value
    return fields


def _unquote(text: str) -> str:
    """:func:`urllib.parse.unquote_plus`, strict UTF-8, for short values.

    An escape that is not two hex digits stays as it is, as ``unquote_plus`` leaves it."""
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    first, *rest = text.split("%")
    out = bytearray(first.encode())
    for part in rest:
        byte = _HEX_BYTE.get(part[:2])
        if byte is None:
            out += b"%"
            out += part.encode()
        else:
            out += byte
            out += part[2:].encode()
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("a percent-encoded value is not valid UTF-8") from None


_HEX_BYTE = {f"{a}{b}": bytes([int(a + b, 16)]) for a in "0123456789abcdefABCDEF" for b in "0123456789abcdefABCDEF"}


def _json_fields(text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the JSON body must be an object")
    if len(data) > MAX_FIELDS:
        raise BadRequest(f"more than {MAX_FIELDS} fields")
    fields: dict[str, str] = {}
    for name, value in data.items():
        fields[name] = _json_text(name, value)
    return fields


def _json_text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if name in (PHONE_NUMBER, NETWORK_CODE, DURATION, HOPS) and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # some clients send numbers as JSON numbers
    if name in (SESSION_ID, SERVICE_CODE, PHONE_NUMBER, NETWORK_CODE, TEXT, STATUS, DURATION, HOPS, ERROR_MESSAGE):
        if value is None and name in (NETWORK_CODE, TEXT, DURATION, HOPS, ERROR_MESSAGE):
            return ""
        raise BadRequest("must be a string", field=name)
    return ""  # a field we do not read: its type does not matter
