"""The HTTP edge Kannel calls: ``GET /sms/kannel`` (a text arrived) and ``GET /sms/dlr`` (a report).

The only module that knows Kannel's query strings. The raw query is decoded here,
strictly (percent-encoding, UTF-8 or the charset Kannel names, no control characters,
each field once), and turned at once into :class:`InboundSms` / :class:`DeliveryReport`;
anything else is a terse 400, never a 500. The reply goes back as the body of the
response (``text/plain; charset=utf-8``), which smsbox sends to the subscriber; the
``X-Kannel-*`` headers set its coding and ask for delivery reports
(``accept-x-kannel-headers = true`` in kannel.conf).

Status codes: 200 reply (or report stored); 200 with an empty body and ``X-IVR-Refused:
rate-limited`` over the per-number rate (smsbox sends nothing for an empty body, while any
non-2xx makes it text its ``reply-couldnotfetch``); 400 bad request (the subscriber gets
that could-not-fetch text, which names a person to call); 403 address not allowed; 401 bad
signature; 503 the journey store could not take a delivery report, or a bug (logged).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import unquote_to_bytes

from aiohttp import web

from ivr.crm.numbers import normalise
from ivr.journey.errors import JourneyError
from ivr.sms import dlr
from ivr.sms.config import Security
from ivr.sms.dlr import DeliveryReport
from ivr.sms.errors import BadSmsRequest, RateLimited
from ivr.sms.service import InboundSms, SmsReply, SmsService
from ivr.webhook import hmac_hex, peer_in, same_secret_text

log = logging.getLogger(__name__)

KANNEL_PATH = "/sms/kannel"
DLR_PATH = "/sms/dlr"
SIGNATURE_HEADER = "X-IVR-Signature"
#: Set on an empty 200 that is a refusal rather than a reply with nothing to say.
REFUSED_HEADER = "X-IVR-Refused"
#: Kannel's charset names (``%C``) and how we decode them.
CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-16be": "utf-16-be", "ucs-2": "utf-16-be", "ucs2": "utf-16-be",
            "iso-8859-1": "latin-1", "latin1": "latin-1", "windows-1252": "cp1252"}
MAX_SHORT_FIELD = 64
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_MESSAGE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_PLAIN = {"Cache-Control": "no-store"}


def mount_sms(app: web.Application, service: SmsService) -> None:
    """Add ``GET /sms/kannel`` and ``GET /sms/dlr`` for ``service`` to ``app``."""
    security = service.config.security

    async def incoming(request: web.Request) -> web.Response:
        refused = _guard(request, security, signed=True)
        if refused is not None:
            return refused
        try:
            sms = inbound_from_query(request.rel_url.raw_query_string, service)
        except BadSmsRequest as exc:
            return _bad(exc)
        try:
            reply = await service.handle(sms)
        except RateLimited as exc:
            log.info("SMS from a number over the rate limit; retry in %.0f s", exc.retry_after_s)
            # Not 429: smsbox answers any non-2xx with its could-not-fetch text, which would keep an
            # auto-responder loop going. An empty 200 is what makes it send nothing.
            return web.Response(status=200, text="", content_type="text/plain", headers={
                **_PLAIN, REFUSED_HEADER: "rate-limited", "Retry-After": str(max(1, round(exc.retry_after_s)))})
        return web.Response(text=reply.text, content_type="text/plain", charset="utf-8",
                            headers={**_PLAIN, **kannel_headers(reply, service, _base_url(request, service))})

    async def delivery(request: web.Request) -> web.Response:
        refused = _guard(request, security, signed=False)
        if refused is not None:
            return refused
        try:
            report = report_from_query(request.rel_url.raw_query_string, security.hmac_secret)
        except BadSmsRequest as exc:
            return _bad(exc)
        try:
            await service.delivery(report)
        except JourneyError as exc:
            log.error("SMS delivery report not stored: %s", exc)
            return web.Response(status=503, text="unavailable", headers=_PLAIN)
        return web.Response(text="ok", content_type="text/plain", headers=_PLAIN)

    app.router.add_get(KANNEL_PATH, _never_500(incoming))
    app.router.add_get(DLR_PATH, _never_500(delivery))


# -- query string -> our types ----------------------------------------------------------


def parse_query(raw: str) -> dict[str, bytes]:
    """Field name -> raw bytes of its value; refuses bad percent-encoding and repeated fields."""
    if _BAD_PERCENT.search(raw):
        raise BadSmsRequest("query", "invalid percent-encoding")
    out: dict[str, bytes] = {}
    for pair in raw.split("&"):
        if not pair:
            continue
        name_raw, _, value_raw = pair.partition("=")
        name = _text(unquote_to_bytes(name_raw.replace("+", " ")), "utf-8", "query")
        if name in out:
            raise BadSmsRequest(name, "given more than once")
        out[name] = unquote_to_bytes(value_raw.replace("+", " "))
    return out


def inbound_from_query(raw: str, service: SmsService) -> InboundSms:
    """An :class:`InboundSms` from Kannel's ``get-url`` query (from, to, text, smsc, id, charset)."""
    fields = parse_query(raw)
    charset_name = _text(fields.get("charset", b"utf-8"), "utf-8", "charset").strip().lower() or "utf-8"
    charset = CHARSETS.get(charset_name)
    if charset is None:
        raise BadSmsRequest("charset", "unsupported character set")
    coding = fields.get("coding", b"0")
    if coding not in (b"0", b"2", b"", b"-1"):  # GSM-7, UCS-2 (recoded to UTF-8 by mo-recode), unset
        raise BadSmsRequest("coding", "binary messages are not supported")
    for name in ("from", "to", "text"):
        if name not in fields:
            raise BadSmsRequest(name, "missing")
    text = _text(fields["text"], charset, "text")
    if len(text) > service.config.limits.max_text_chars:
        raise BadSmsRequest("text", f"longer than {service.config.limits.max_text_chars} characters")
    _no_controls(text, "text", allow_newlines=True)
    raw_from = _short(fields, "from")
    sender = normalise(raw_from, service.default_region) if raw_from else None
    if sender is None:
        raise BadSmsRequest("from", "not a phone number")
    receiver = _short(fields, "to")
    if not receiver:
        raise BadSmsRequest("to", "missing")
    message_id = _short(fields, "id") if "id" in fields else ""
    if message_id and not _MESSAGE_ID.fullmatch(message_id):
        raise BadSmsRequest("id", "not a message id")
    smsc = _short(fields, "smsc") if "smsc" in fields else ""
    return InboundSms(sender, receiver, text, message_id or str(uuid.uuid4()), smsc or None)


def report_from_query(raw: str, secret: str = "") -> DeliveryReport:
    """A :class:`DeliveryReport` from the DLR URL we gave Kannel (ref, sig, status=%d, answer=%A)."""
    fields = parse_query(raw)
    ref = _short(fields, "ref", limit=dlr.MAX_REF_CHARS) if "ref" in fields else None
    sig = _short(fields, "sig") if "sig" in fields else None
    interaction, key = dlr.decode_ref(ref, sig, secret)
    status = _short(fields, "status") if "status" in fields else ""
    if not status.isascii() or not status.isdigit() or len(status) > 3:
        raise BadSmsRequest("status", "missing or not a Kannel DLR type")
    answer = _text(fields.get("answer", b""), "utf-8", "answer", replace=True)[:MAX_SHORT_FIELD * 4]
    return DeliveryReport(interaction, key, int(status), "".join(c for c in answer if c.isprintable()) or None)


def _text(raw: bytes, charset: str, field: str, *, replace: bool = False) -> str:
    try:
        return raw.decode(charset, errors="replace" if replace else "strict")
    except (UnicodeDecodeError, LookupError):
        raise BadSmsRequest(field, f"not valid {charset}") from None


def _short(fields: dict[str, bytes], name: str, *, limit: int = MAX_SHORT_FIELD) -> str:
    value = _text(fields.get(name, b""), "utf-8", name).strip()
    if len(value) > limit:
        raise BadSmsRequest(name, f"longer than {limit} characters")
    _no_controls(value, name, allow_newlines=False)
    return value


def _no_controls(value: str, field: str, *, allow_newlines: bool) -> None:
    allowed = "\n\r\t" if allow_newlines else ""
    for c in value:
        if (c < " " or "\x7f" <= c <= "\x9f") and c not in allowed:
            raise BadSmsRequest(field, "contains control characters")
        if "\ud800" <= c <= "\udfff":
            raise BadSmsRequest(field, "contains unpaired surrogates")


# -- our types -> Kannel ---------------------------------------------------------------


def kannel_headers(reply: SmsReply, service: SmsService, base_url: str) -> dict[str, str]:
    """The coding of the reply, and the delivery report request for it."""
    headers = {"X-Kannel-Coding": str(reply.segments.coding)}
    mask = service.config.kannel.dlr_mask
    if mask:
        headers["X-Kannel-DLR-Mask"] = str(mask)
        headers["X-Kannel-DLR-Url"] = dlr.callback_url(base_url, reply.interaction, reply.journey_key,
                                                       service.config.security.hmac_secret)
    return headers


def _base_url(request: web.Request, service: SmsService) -> str:
    """Where Kannel reaches us: the configured URL, else the address it just used."""
    configured = service.config.kannel.controller_url
    return configured or str(request.url.origin())


# -- guards ----------------------------------------------------------------------------


def _guard(request: web.Request, security: Security, *, signed: bool) -> web.Response | None:
    if security.allow_ips and not _address_allowed(request.remote, security):
        log.warning("SMS gateway request from a refused address %s", request.remote)
        return web.Response(status=403, text="forbidden", headers=_PLAIN)
    if signed and security.hmac_secret:
        expected = hmac_hex(security.hmac_secret.encode("utf-8"), request.rel_url.raw_query_string.encode("utf-8"))
        if not same_secret_text(request.headers.get(SIGNATURE_HEADER, ""), expected):
            return web.Response(status=401, text="bad signature", headers=_PLAIN)
    return None


def _address_allowed(remote: str | None, security: Security) -> bool:
    return peer_in(security.allow_ips, remote)


def _bad(exc: BadSmsRequest) -> web.Response:
    log.info("SMS gateway request refused: %s", exc)
    return web.Response(status=400, text=f"bad request: {exc}", content_type="text/plain", headers=_PLAIN)


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _never_500(handler: Handler) -> Handler:
    """A bug must not make Kannel send its "request failed" text: log it, answer 503 (Kannel may retry)."""

    async def guarded(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("SMS gateway handler failed")
            return web.Response(status=503, text="unavailable", headers=_PLAIN)

    return guarded
