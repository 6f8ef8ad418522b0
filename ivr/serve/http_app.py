"""The controller's HTTP side (aiohttp): health, admin reload, agent context API, metrics.

The admin endpoints (``POST /admin/reload``, ``/admin/notify``) need the admin key from any
address: a local reverse proxy makes every request look local, so the address proves nothing.
The agent API needs its own key. ``/metrics`` is for the operator's Prometheus: open while the
listener is bound to loopback, behind the metrics key once it faces a network.
"""

from __future__ import annotations

import hmac
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ivr.agent.context_api import mount_context_api
from ivr.agent.desk import AgentDesk
from ivr.agent.http import mount_agent_api
from ivr.agent.ports import CustomerNames, JourneyReader, JourneyWriter, TokenResolver
from ivr.composition import ContextApi
from ivr.journey.feed import JourneyFeed
from ivr.journey.kpi import Kpis
from ivr.journey.spool import SpoolStats
from ivr.live.reload import ReloadResult
from ivr.metrics.prometheus import mount_metrics
from ivr.refusals import RefusalGuard
from ivr.sms import SmsService, mount_sms, notify
from ivr.sms.errors import NotifyRefused, SmsError
from ivr.sms.outbox import SmsOutbox
from ivr.ussd import UssdGateway, mount_ussd

HealthProbe = Callable[[], Mapping[str, object]]


@dataclass(frozen=True)
class AgentApiParts:
    tokens: TokenResolver
    journey: JourneyReader
    api_key: str
    names: CustomerNames | None = None
    desk: AgentDesk | None = None
    feed: JourneyFeed | None = None
    audit: JourneyWriter | None = None  # every journey a token opens is recorded here


ReloadRequest = Callable[[], Awaitable[ReloadResult]]
"""Runs one reload for ``POST /admin/reload`` (``ivr.live.reload.Reloader.reload_async``)."""


@dataclass(frozen=True)
class AdminAccess:
    """Who may use the operator's endpoints: the admin key, and the metrics key ("" = the admin key)."""

    key: str
    metrics_key: str = ""
    # The HTTP listener is bound to loopback: /metrics answers without a key
    metrics_open: bool = True

    def admits(self, request: web.Request) -> bool:
        return _bearer_is(request, self.key)

    def admits_metrics(self, request: web.Request) -> bool:
        return self.metrics_open or _bearer_is(request, self.metrics_key or self.key)


class BadRequestsOnOneLine(logging.Filter):
    """aiohttp answers a malformed request (a 9 KB URL, a broken header) with 400 itself, then logs
    it at ERROR with a traceback. It is the client's fault, not ours: one WARNING line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "bad HTTP request refused with %s: %s", (exc.code, str(exc.message)[:200])
            record.exc_info, record.exc_text = None, None
        return True


def quiet_bad_requests() -> None:
    """Install :class:`BadRequestsOnOneLine` on aiohttp's server logger (once)."""
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadRequestsOnOneLine) for f in server_log.filters):
        server_log.addFilter(BadRequestsOnOneLine())


def build_app(health: HealthProbe, reload: ReloadRequest, *, admin: AdminAccess,
              agent_api: AgentApiParts | None = None,
              kpis: Callable[[], Kpis] | None = None, sms: SmsService | None = None,
              ussd: UssdGateway | None = None, spool: SpoolStats | None = None,
              context_api: ContextApi | None = None, refusals: RefusalGuard | None = None) -> web.Application:
    quiet_bad_requests()
    app = web.Application()
    refusals = refusals or RefusalGuard()  # one per listener: wrong admin keys and forged tokens count together
    if context_api is not None:  # before the agent API: /context/{token} must not take its paths
        mount_context_api(app, context_api.access, context_api.intake, context_api.staff)
    if sms is not None:
        mount_sms(app, sms)
    if ussd is not None:
        mount_ussd(app, ussd)
    if agent_api is not None:
        mount_agent_api(app, agent_api.tokens, agent_api.journey, agent_api.api_key, names=agent_api.names,
                        desk=agent_api.desk, feed=agent_api.feed, audit=agent_api.audit, guard=refusals)
    if kpis is not None:
        outbox = sms.sender.stats if sms is not None and isinstance(sms.sender, SmsOutbox) else None
        mount_metrics(app, kpis, spool, admits=admin.admits_metrics, outbox=outbox)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **health()})

    async def admin_reload(request: web.Request) -> web.Response:
        if (refused := await _admin_refusal(request, admin, refusals)) is not None:
            return refused
        result = await reload()
        body = {"ok": result.ok, "version": result.version, "generation": result.generation,
                "problems": [str(p) for p in result.problems]}
        return web.json_response(body, status=200 if result.ok else 422)

    async def admin_notify(request: web.Request) -> web.Response:
        """``ivr notify`` through the running controller: its journey, its /metrics, one writer."""
        if (refused := await _admin_refusal(request, admin, refusals)) is not None:
            return refused
        if sms is None:
            return web.json_response({"error": "sms-not-configured", "message": "no SMS service"}, status=503)
        try:
            body = await request.json()
            to, template, variables = body["to"], body["template"], body.get("vars") or {}
            if not (isinstance(to, str) and isinstance(template, str) and isinstance(variables, dict)):
                raise TypeError("to and template must be text, vars a mapping")
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": "bad-request", "message": f"expected {{to, template, vars}}: {exc}"},
                                     status=400)
        try:
            result = await notify(sms, to, template, **{str(k): str(v) for k, v in variables.items()})
        except SmsError as exc:
            status = 422 if isinstance(exc, NotifyRefused) else 502
            return web.json_response({"error": exc.error_id, "message": exc.message, "hint": exc.hint},
                                     status=status)
        return web.json_response(result.to_dict())

    app.router.add_get("/healthz", healthz)
    app.router.add_post("/admin/reload", admin_reload)
    app.router.add_post("/admin/notify", admin_notify)
    return app


#: One answer for a missing and a wrong key: it tells a guesser nothing.
ADMIN_ONLY = {"error": "unauthorized", "message": "admin endpoints need the admin key: Authorization: Bearer <key>"}
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ivr-admin"'}


async def _admin_refusal(request: web.Request, admin: AdminAccess, refusals: RefusalGuard) -> web.Response | None:
    """None when the request carries the admin key; else the answer (401, or 429 after a burst)."""
    started = refusals.started()
    client = refusals.client(request.remote or "", request.headers.get("X-Forwarded-For", ""))
    wait = refusals.locked_for(client)
    if wait:
        return web.json_response({"error": "too_many_refusals"}, status=429,
                                 headers={"Retry-After": str(math.ceil(wait))})
    if admin.admits(request):
        return None
    await refusals.refused(client, started)
    return web.json_response(ADMIN_ONLY, status=401, headers=CHALLENGE)


def _bearer_is(request: web.Request, key: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <key>`` (constant time; an empty key admits nobody)."""
    presented = request.headers.get("Authorization", "")
    scheme, _, token = presented.partition(" ")
    return bool(key) and scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode("utf-8", "replace"), key.encode("utf-8"))
