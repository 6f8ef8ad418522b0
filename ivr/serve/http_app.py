"""The controller's HTTP side (aiohttp): health, admin reload, agent context API, metrics.

``POST /admin/reload`` answers on the HTTP listener, which is bound to 127.0.0.1 by default;
the agent API needs its API key; ``/metrics`` is for the operator's Prometheus.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from ivr.agent.context_api import mount_context_api
from ivr.agent.desk import AgentDesk
from ivr.agent.http import mount_agent_api
from ivr.agent.ports import CustomerNames, JourneyReader, TokenResolver
from ivr.composition import ContextApi
from ivr.journey.feed import JourneyFeed
from ivr.journey.kpi import Kpis
from ivr.journey.spool import SpoolStats
from ivr.live.reload import ReloadResult
from ivr.metrics.prometheus import mount_metrics
from ivr.sms import SmsService, mount_sms, notify
from ivr.sms.errors import NotifyRefused, SmsError
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


ReloadRequest = Callable[[], Awaitable[ReloadResult]]
"""Runs one reload for ``POST /admin/reload`` (``ivr.live.reload.Reloader.reload_async``)."""


def build_app(health: HealthProbe, reload: ReloadRequest, *, agent_api: AgentApiParts | None = None,
              kpis: Callable[[], Kpis] | None = None, sms: SmsService | None = None,
              ussd: UssdGateway | None = None, spool: SpoolStats | None = None,
              context_api: ContextApi | None = None) -> web.Application:
    app = web.Application()
    if context_api is not None:  # before the agent API: /context/{token} must not take its paths
        mount_context_api(app, context_api.access, context_api.intake, context_api.staff)
    if sms is not None:
        mount_sms(app, sms)
    if ussd is not None:
        mount_ussd(app, ussd)
    if agent_api is not None:
        mount_agent_api(app, agent_api.tokens, agent_api.journey, agent_api.api_key, names=agent_api.names,
                        desk=agent_api.desk, feed=agent_api.feed)
    if kpis is not None:
        mount_metrics(app, kpis, spool)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **health()})

    async def admin_reload(request: web.Request) -> web.Response:
        if not _from_this_machine(request):
            return web.json_response(ADMIN_ONLY, status=403)
        result = await reload()
        body = {"ok": result.ok, "version": result.version, "generation": result.generation,
                "problems": [str(p) for p in result.problems]}
        return web.json_response(body, status=200 if result.ok else 422)

    async def admin_notify(request: web.Request) -> web.Response:
        """``ivr notify`` through the running controller: its journey, its /metrics, one writer."""
        if not _from_this_machine(request):
            return web.json_response(ADMIN_ONLY, status=403)
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


#: The admin endpoints answer only this machine: the HTTP listener may face the aggregator or
#: the agents' network (compose binds it to 0.0.0.0), and a notification costs a paid SMS.
ADMIN_ONLY = {"error": "forbidden", "message": "admin endpoints answer requests from this machine only"}


def _from_this_machine(request: web.Request) -> bool:
    try:
        return request.remote is not None and ipaddress.ip_address(request.remote).is_loopback
    except ValueError:
        return False
