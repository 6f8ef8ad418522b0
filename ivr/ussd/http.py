"""``POST /ussd``: the thin HTTP resource in front of :class:`~ivr.ussd.service.UssdGateway`.

Checks happen in the order that costs least to an attacker's disadvantage: the IP
allow-list (403) before reading anything, a bounded body read, the HMAC signature (401)
over the raw bytes, then parsing (400). A request that passed all of them always gets
``200 text/plain`` with ``CON``/``END``, whatever fails behind: the subscriber sees a
screen, the process logs the cause and keeps serving. No path answers 500.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ivr.journey.errors import JourneyError
from ivr.ussd import auth
from ivr.ussd.errors import BadRequest
from ivr.ussd.protocol import parse_request, parse_session_end
from ivr.ussd.service import UssdGateway

log = logging.getLogger(__name__)

PLAIN = "text/plain"


class _BodyTooLarge(Exception):
    pass


def mount_ussd(app: web.Application, gateway: UssdGateway) -> None:
    """Add ``POST <config.path>`` (``/ussd`` by default) answering for ``gateway``."""
    config = gateway.config

    async def checked_body(request: web.Request, what: str) -> bytes | web.Response:
        """The raw body once the peer, size and signature checks passed; else the refusal."""
        if not auth.peer_allowed(config.auth, request.remote):
            log.warning("USSD %s refused: peer %s is not in auth.allow_from", what, request.remote)
            return _plain("forbidden", 403)
        try:
            body = await _read_body(request, config.limits.max_body_bytes)
        except _BodyTooLarge:
            return _plain(f"bad request: body larger than {config.limits.max_body_bytes} bytes", 400)
        if not auth.signature_ok(config.auth, body, request.headers.get(config.auth.header)):
            log.warning("USSD %s refused: missing or wrong %s from %s", what, config.auth.header, request.remote)
            return _plain("unauthorized", 401)
        return body

    async def ussd(request: web.Request) -> web.Response:
        body = await checked_body(request, "request")
        if isinstance(body, web.Response):
            return body
        try:
            parsed = parse_request(_content_type(request), body, max_text=config.limits.max_text)
            reply = await gateway.answer(parsed)
        except BadRequest as exc:
            log.info("USSD bad request from %s: %s", request.remote, exc.reason)
            return _plain(f"bad request: {exc.reason}", 400)
        except asyncio.CancelledError:
            raise  # the aggregator hung up; nothing to answer
        except Exception:  # a bug must cost one screen, not the process or a 500
            log.exception("USSD request failed unexpectedly")
            reply = gateway.try_later()
        return web.Response(text=reply.render(), content_type=PLAIN, charset="utf-8")

    async def session_end(request: web.Request) -> web.Response:
        """The aggregator's end-of-session notification: 200 once stored (or a repeat), 503 to
        have it sent again when the journey store could not take it, 400 when malformed."""
        body = await checked_body(request, "notification")
        if isinstance(body, web.Response):
            return body
        try:
            stored = await gateway.session_ended(parse_session_end(_content_type(request), body))
        except BadRequest as exc:
            log.info("USSD notification bad request from %s: %s", request.remote, exc.reason)
            return _plain(f"bad request: {exc.reason}", 400)
        except (JourneyError, TimeoutError) as exc:
            log.error("USSD notification not stored (the aggregator will resend it): %s", exc)
            return _plain("not stored, send it again", 503)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("USSD notification failed unexpectedly")
            return _plain("not stored, send it again", 503)
        return _plain("OK" if stored else "OK (already stored)", 200)

    app.router.add_post(config.path, ussd)
    app.router.add_post(config.events_path, session_end)


def _content_type(request: web.Request) -> str:
    raw = request.headers.get("Content-Type", "")
    return raw.split(";", 1)[0].strip().lower()


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None:
        if request.content_length > limit:
            raise _BodyTooLarge
        return await request.read()  # the parser stops at Content-Length: bounded
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge


def _plain(text: str, status: int) -> web.Response:
    return web.Response(text=text, status=status, content_type=PLAIN, charset="utf-8")
