"""The context service's HTTP side for other systems and staff (aiohttp).

- ``POST /context/events``: a signed event from a client of config/context.yaml
  (:mod:`ivr.agent.signing`): 201 stored, 200 a duplicate of an id already stored,
  401 for any signature problem (one body for all: unknown client, wrong key, stale
  timestamp), 403 a channel the client may not write, 413 too big, 422 what to fix,
  429 over the client's rate (``Retry-After``), 503 the store or the CRM is away.
- ``GET /context/customers/{customer}/journey`` and ``GET /context/numbers/{number}/journey``:
  staff with ``journey.read`` (``Authorization: Bearer <key>``, optionally
  ``X-IVR-User: <the person>``); every attempt is audited; 403 without the role.
- ``GET /context/staff/audit``: the audit trail, for ``audit.read``.

The token path for agents (``GET /context/{token}``) is :mod:`ivr.agent.http`.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from ivr.agent.access_config import Client, ContextAccess, Staff
from ivr.agent.intake import EventIntake, IntakeRefused
from ivr.agent.signing import CLIENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_ok
from ivr.agent.staff import NotPermitted, StaffJourneys
from ivr.journey.errors import JourneyError

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 8192
USER_HEADER = "X-IVR-User"
PRIVATE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
UNAUTHORIZED = {"error": "unauthorized"}
FORBIDDEN = {"error": "forbidden", "message": "your role does not allow this; the attempt was recorded"}
UNAVAILABLE = {"error": "unavailable", "message": "the journey store is not answering; retry later"}


def mount_context_api(app: web.Application, access: ContextAccess, intake: EventIntake, staff: StaffJourneys,
                      *, clock: Callable[[], float] = time.time) -> None:
    async def add_event(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_EVENT_BYTES:
            return _json({"error": "too_large", "message": f"at most {MAX_EVENT_BYTES} bytes"}, 413)
        body = await request.content.read(MAX_EVENT_BYTES + 1)
        if len(body) > MAX_EVENT_BYTES:
            return _json({"error": "too_large", "message": f"at most {MAX_EVENT_BYTES} bytes"}, 413)
        client = _signed_client(access, request, body, clock())
        if client is None:
            return _json(UNAUTHORIZED, 401)
        wait = intake.retry_after(client)
        if wait > 0:
            return _json({"error": "rate_limited", "message": f"at most {client.rate_per_minute} events a minute"},
                         429, {"Retry-After": str(max(1, math.ceil(wait)))})
        try:
            payload = json.loads(body)
        except ValueError:
            return _json({"error": "invalid", "message": "the body is not JSON"}, 422)
        try:
            accepted = await intake.accept(client, payload)
        except IntakeRefused as exc:
            return _json(exc.to_dict(), exc.status)
        except JourneyError as exc:
            log.error("context event from %s not stored: %s", client.name, exc)
            return _json(UNAVAILABLE, 503, {"Retry-After": "5"})
        status = {"status": "stored" if accepted.stored else "duplicate", "interaction": accepted.interaction}
        return _json(status, 201 if accepted.stored else 200)

    def staff_read(by: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            member = _staff(access, request)
            if member is None:
                return _json(UNAUTHORIZED, 401)
            user = request.headers.get(USER_HEADER, "")
            value = request.match_info[by]
            try:
                view = await staff.journey(member, user, **{by: value})
            except NotPermitted:
                return _json(FORBIDDEN, 403)
            except IntakeRefused as exc:
                return _json(exc.to_dict(), exc.status)
            except JourneyError as exc:
                log.error("staff journey read not served: %s", exc)
                return _json(UNAVAILABLE, 503)
            return _json(view.to_dict(), 200)
        return handler

    async def audit(request: web.Request) -> web.Response:
        member = _staff(access, request)
        if member is None:
            return _json(UNAUTHORIZED, 401)
        try:
            limit = min(1000, max(1, int(request.query.get("limit", "200"))))
        except ValueError:
            return _json({"error": "invalid", "message": "limit: a whole number", "field": "limit"}, 422)
        try:
            trail = await staff.audit_trail(member, request.headers.get(USER_HEADER, ""), limit=limit)
        except NotPermitted:
            return _json(FORBIDDEN, 403)
        except JourneyError as exc:
            log.error("audit trail not served: %s", exc)
            return _json(UNAVAILABLE, 503)
        return _json({"audit": trail}, 200)

    app.router.add_post("/context/events", add_event)
    app.router.add_get("/context/customers/{customer}/journey", staff_read("customer"))
    app.router.add_get("/context/numbers/{number}/journey", staff_read("number"))
    app.router.add_get("/context/staff/audit", audit)


def _signed_client(access: ContextAccess, request: web.Request, body: bytes, now: float) -> Client | None:
    client = access.clients.get(request.headers.get(CLIENT_HEADER, ""))
    if client is None:
        return None
    if not signature_ok(client.key, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER),
                        body, now):
        log.info("context event refused: bad or stale signature from client %s", client.name)
        return None
    return client


def _staff(access: ContextAccess, request: web.Request) -> Staff | None:
    """The staff entry whose key was presented; every key is compared, so timing tells nothing."""
    presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip().encode("utf-8", "replace")
    found = None
    for member in access.staff.values():
        if hmac.compare_digest(presented, member.key.encode("utf-8")):
            found = member
    return found


def _json(body: Mapping[str, Any], status: int, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers={**PRIVATE_HEADERS, **(headers or {})})
