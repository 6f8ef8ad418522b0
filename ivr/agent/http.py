"""The agent context API: the token that came with the call becomes the caller's journey.

``GET /context/{token}`` (JSON, for the agent desktop or a CRM plug-in) and
``GET /agent/{token}`` (the screen pop, rendered by :mod:`ivr.agent.screen_pop`) share
the API key check, the token check and the journey read of :mod:`ivr.agent.service`.
``GET /agent/{token}/live`` keeps an open page up to date (server-sent events), and the
agent writes back with ``POST /agent/{token}/note``, ``/transfer``, ``/consult`` and
``/conference`` (:mod:`ivr.agent.desk`): 422 with the field and the allowed values for a
request that is not valid, 409 when the call cannot do it now. The desktop is the only
client, so every refusal is terse on purpose: 401 when the key is missing or wrong, 404
for any token that does not resolve (forged, malformed, unknown, expired, revoked) with one
body for all, so a client cannot learn which tokens exist or when they were issued. Every
refusal takes the same time at least (:mod:`ivr.refusals`), and an address with a burst
of them gets 429 for a while. Why a token was refused goes to the log, with the token's
first characters only. ``POST /context/{token}/revoke`` ends a token for every controller.
Each journey opened and each revocation is audited with the agent named by ``X-IVR-User``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from ivr.agent import screen_pop
from ivr.agent.desk import AgentDesk, RequestRefused
from ivr.agent.ports import CallControlError, CustomerNames, JourneyReader, JourneyWriter, TokenResolver
from ivr.agent.service import AgentAccess, ContextNotFound, JourneyEntry, entry, participants
from ivr.journey import events as E
from ivr.journey.errors import JourneyError
from ivr.journey.feed import JourneyFeed
from ivr.journey.ports import StampedEvent
from ivr.journey.tokens import ContextClaim
from ivr.refusals import RefusalGuard

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
USER_HEADER = "X-IVR-User"  # the agent at the desk, for the audit trail (the page takes ?user=)
KEY_QUERY = "key"  # the screen pop only: a browser opening a URL cannot send a header
NOT_FOUND = {"error": "not_found"}
UNAUTHORIZED = {"error": "unauthorized"}
UNAVAILABLE = {"error": "unavailable"}
TOO_MANY = {"error": "too_many_refusals"}
# The answers must not be cached or leak the URL (with its token) to another site.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                   "X-Content-Type-Options": "nosniff"}
MAX_BODY_BYTES = 8192
POLL_S = 5.0  # events another process stored reach the page within this (this process's at once); and
# a comment line this often keeps proxies and NATs from closing an idle page
RETRY_MS = 2000  # how soon a browser reconnects after losing the feed
SENT_MEMORY = 2000
# Events that change who is on the call: the page's "On this call" line is sent again after them.
PEOPLE = frozenset({E.AGENT_CONNECTED, E.AGENT_COMPLETED, E.CALL_TRANSFERRED, E.PARTICIPANT_JOINED,
                    E.PARTICIPANT_LEFT, E.HANGUP})


def mount_agent_api(app: web.Application, tokens: TokenResolver, journey: JourneyReader, api_key: str, *,
                    names: CustomerNames | None = None, desk: AgentDesk | None = None,
                    feed: JourneyFeed | None = None, clock: Callable[[], float] = time.time,
                    audit: JourneyWriter | None = None, guard: RefusalGuard | None = None) -> None:
    """Add ``GET /context/{token}`` (JSON), ``GET /agent/{token}`` (the screen pop),
    ``POST /context/{token}/revoke`` and, with a ``feed``, the page's live events; with a
    ``desk``, the agent's write-back endpoints.

    All answer 401 for a missing or wrong key, 404 for a token that does not resolve,
    429 to an address that was refused too often lately, 503 when the journey store is
    down. The pages also take the key as ``?key=``. With ``audit``, every journey opened
    and every revocation is recorded first.
    """
    access = AgentAccess(tokens, journey, api_key, names=names, audit=audit)
    refusals = guard or RefusalGuard()

    def user_of(request: web.Request) -> str:
        return request.headers.get(USER_HEADER) or request.query.get("user") or ""

    def client(request: web.Request) -> str:
        return refusals.client(request.remote or "", request.headers.get("X-Forwarded-For", ""))

    async def refuse(request: web.Request, started: float, answer: web.Response) -> web.Response:
        await refusals.refused(client(request), started)
        return answer

    def locked(request: web.Request) -> web.Response | None:
        wait = refusals.locked_for(client(request))
        if not wait:
            return None
        return web.json_response(TOO_MANY, status=429,
                                 headers={**PRIVATE_HEADERS, "Retry-After": str(math.ceil(wait))})

    async def gate(request: web.Request, started: float, presented: str | None,
                   unauthorized: Callable[[], web.Response] = lambda: _json(UNAUTHORIZED, 401)
                   ) -> web.Response | None:
        """None when the request may go on; else its answer (429 while locked out, 401 for the key)."""
        if (answer := locked(request)) is not None:
            return answer
        if not access.key_ok(presented):
            return await refuse(request, started, unauthorized())
        return None

    async def context(request: web.Request) -> web.Response:
        started = refusals.started()
        if (answer := await gate(request, started, request.headers.get(API_KEY_HEADER))) is not None:
            return answer
        try:
            found = await access.context(request.match_info["token"], user_of(request))
        except ContextNotFound:
            return await refuse(request, started, _json(NOT_FOUND, 404))
        except JourneyError as exc:
            log.error("agent context unavailable: %s", exc)
            return _json(UNAVAILABLE, 503)
        return _json(found.to_dict(), 200)

    async def revoke(request: web.Request) -> web.Response:
        started = refusals.started()
        if (answer := await gate(request, started, request.headers.get(API_KEY_HEADER))) is not None:
            return answer
        try:
            claim = await access.revoke(request.match_info["token"], user_of(request))
        except ContextNotFound:
            return await refuse(request, started, _json(NOT_FOUND, 404))
        except JourneyError as exc:
            log.error("token revocation not stored: %s", exc)
            return _json(UNAVAILABLE, 503)
        log.info("context token for %s (%s) revoked by %r", claim.customer_key, claim.interaction,
                 user_of(request)[:64])
        return _json({"status": "revoked"}, 200)

    async def agent(request: web.Request) -> web.Response:
        started = refusals.started()
        presented = request.headers.get(API_KEY_HEADER) or request.query.get(KEY_QUERY)
        if (answer := await gate(request, started, presented,
                                 lambda: _html(screen_pop.render_refusal(401), 401))) is not None:
            return answer
        try:
            found = await access.context(request.match_info["token"], user_of(request), "page")
        except ContextNotFound:
            return await refuse(request, started, _html(screen_pop.render_refusal(404), 404))
        except JourneyError as exc:
            log.error("screen pop unavailable: %s", exc)
            return _html(screen_pop.render_refusal(503), 503)
        if feed is None:
            return _html(screen_pop.render_screen_pop(found), 200)
        nonce = secrets.token_urlsafe(16)
        return _html(screen_pop.render_screen_pop(found, nonce=nonce), 200, policy=screen_pop.live_policy(nonce))

    async def live(request: web.Request) -> web.StreamResponse:
        assert feed is not None
        started = refusals.started()
        presented = request.headers.get(API_KEY_HEADER) or request.query.get(KEY_QUERY)
        if (answer := await gate(request, started, presented)) is not None:
            return answer
        try:
            claim = await access.claim(request.match_info["token"])
            await access.audit(claim, user_of(request), "live page")
        except ContextNotFound:
            return await refuse(request, started, _json(NOT_FOUND, 404))
        except JourneyError as exc:
            log.error("live agent page unavailable: %s", exc)
            return _json(UNAVAILABLE, 503)
        return await _follow(request, access, feed, claim, clock)

    def action(name: str, act: Callable[[AgentDesk, Any, dict[str, object]], Awaitable[Any]]) -> None:
        async def handler(request: web.Request) -> web.Response:
            assert desk is not None
            started = refusals.started()
            if (answer := await gate(request, started, request.headers.get(API_KEY_HEADER))) is not None:
                return answer
            body = await _body(request)
            if body is None:
                return _json({"error": "invalid", "message": f"send a JSON object of at most {MAX_BODY_BYTES} bytes"},
                             422)
            try:
                claim = await access.claim(request.match_info["token"])
                result = await act(desk, claim, body)
            except ContextNotFound:
                return await refuse(request, started, _json(NOT_FOUND, 404))
            except RequestRefused as exc:
                return _json(exc.to_dict(), 422)
            except CallControlError as exc:
                return _json({"error": "conflict", "message": str(exc)}, 409)
            except JourneyError as exc:
                log.error("agent %s not stored: %s", name, exc)
                return _json(UNAVAILABLE, 503)
            if not isinstance(result, dict):
                result = {"status": "stored", "agent": result.agent, "text": result.text, "wrapup": result.wrapup,
                          "redacted": list(result.redacted)}
            return _json(result, 200)
        app.router.add_post(f"/agent/{{token}}/{name}", handler)

    app.router.add_get("/context/{token}", context)
    app.router.add_post("/context/{token}/revoke", revoke)
    app.router.add_get("/agent/{token}", agent)
    if feed is not None:
        app.router.add_get("/agent/{token}/live", live)
    if desk is not None:
        action("note", AgentDesk.note)
        action("transfer", AgentDesk.transfer)
        action("consult", AgentDesk.consult)
        action("conference", AgentDesk.conference)


async def _body(request: web.Request) -> dict[str, object] | None:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return None
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        return None
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _follow(request: web.Request, access: AgentAccess, feed: JourneyFeed, claim: ContextClaim,
                  clock: Callable[[], float]) -> web.StreamResponse:
    """Server-sent events: what the customer's journey gains while the page is open.

    Resumes after ``Last-Event-ID`` (the browser sends it when it reconnects) or ``?since=``
    (the newest event the page was rendered with), so nothing stored meanwhile is lost.
    """
    resp = web.StreamResponse(headers={**PRIVATE_HEADERS, "Content-Type": "text/event-stream; charset=utf-8",
                                       "X-Accel-Buffering": "no"})  # nginx: do not buffer the stream
    cursor = _float(request.headers.get("Last-Event-ID")) or _float(request.query.get("since")) or clock()
    floor = cursor  # the page has everything up to here: a poll never reaches back past it
    sub = feed.subscribe(claim.customer_key)  # before the read below: nothing falls between the two
    sent: deque[tuple[float, str, str]] = deque(maxlen=SENT_MEMORY)
    try:
        await resp.prepare(request)
        await resp.write(f"retry: {RETRY_MS}\n\n".encode())

        async def send(entries: list[JourneyEntry]) -> None:
            nonlocal cursor
            people = False
            for new in entries:
                mark = (new.at, new.interaction, new.type)
                if mark in sent:
                    continue
                sent.append(mark)
                cursor = max(cursor, new.at)
                data = json.dumps(screen_pop.live_entry(claim.issued_at, claim.interaction, new))
                await resp.write(f"id: {cursor:.6f}\nevent: journey\ndata: {data}\n\n".encode())
                people = people or (new.interaction == claim.interaction and new.type in PEOPLE)
            if people:
                recent = await access.since(claim, claim.journey_since - 1)
                on = participants([StampedEvent(e.at, e.channel, e.interaction, e.type, dict(e.data)) for e in recent],
                                  claim.interaction)
                await resp.write(f"event: participants\ndata: {json.dumps([p.to_dict() for p in on])}\n\n".encode())

        await send(await access.since(claim, cursor))
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + POLL_S
        while clock() < claim.expires_at:
            event = await sub.next(max(0.0, next_poll - loop.time()))
            if sub.overflowed:
                await resp.write(b"event: resync\ndata: {}\n\n")
                break
            if event is not None:
                await send([entry(event)])
                continue
            if loop.time() >= next_poll:  # another process's writes, then a heartbeat
                next_poll = loop.time() + POLL_S
                # another process's append may carry a slightly older time than ours: look back a little
                await send(await access.since(claim, max(floor, cursor - POLL_S)))
            await resp.write(b": keep-alive\n\n")
        else:
            await resp.write(b"event: expired\ndata: {}\n\n")
    except ConnectionResetError:
        pass  # the page was closed
    except JourneyError as exc:
        log.warning("live agent page stopped: %s", exc)
    finally:
        feed.unsubscribe(sub)
    return resp


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) and number > 0 else None


def _json(body: Mapping[str, Any], status: int) -> web.Response:
    return web.json_response(body, status=status, headers=PRIVATE_HEADERS)


def _html(page: str, status: int, *, policy: str = screen_pop.CONTENT_SECURITY_POLICY) -> web.Response:
    headers = {**PRIVATE_HEADERS, "Content-Security-Policy": policy}
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8", headers=headers)
