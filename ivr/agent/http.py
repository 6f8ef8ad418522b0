"""The agent context API: the token that came with the call becomes the caller's journey.

``GET /context/{token}`` (JSON, for the agent desktop or a CRM plug-in) and
``GET /agent/{token}`` (the screen pop, rendered by :mod:`ivr.agent.screen_pop`) share
the API key check, the token check and the journey read of :mod:`ivr.agent.service`. The desktop is the only
client, so every refusal is terse on purpose: 401 when the key is missing or wrong, 404
for any token that does not resolve (forged, malformed, unknown, expired) with one body
for all, so a client cannot learn which tokens exist or when they were issued. Why a
token was refused goes to the log, with the token's first characters only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ivr.agent import screen_pop
from ivr.agent.ports import CustomerNames, JourneyReader, TokenResolver
from ivr.agent.service import AgentAccess, ContextNotFound
from ivr.journey.errors import JourneyError

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
KEY_QUERY = "key"  # the screen pop only: a browser opening a URL cannot send a header
NOT_FOUND = {"error": "not_found"}
UNAUTHORIZED = {"error": "unauthorized"}
UNAVAILABLE = {"error": "unavailable"}
# The answers must not be cached or leak the URL (with its token) to another site.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                   "X-Content-Type-Options": "nosniff"}


def mount_agent_api(app: web.Application, tokens: TokenResolver, journey: JourneyReader, api_key: str, *,
                    names: CustomerNames | None = None) -> None:
    """Add ``GET /context/{token}`` (JSON) and ``GET /agent/{token}`` (the screen pop).

    Both answer 401 for a missing or wrong key, 404 for a token that does not resolve,
    503 when the journey store is down. The screen pop also takes the key as ``?key=``.
    """
    access = AgentAccess(tokens, journey, api_key, names=names)

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
