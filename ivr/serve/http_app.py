"""The controller's HTTP side (aiohttp): health, admin reload, agent context API, metrics.

``POST /admin/reload`` answers on the HTTP listener, which is bound to 127.0.0.1 by default;
the agent API needs its API key; ``/metrics`` is for the operator's Prometheus.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from ivr.agent.http import mount_agent_api
from ivr.agent.ports import CustomerNames, JourneyReader, TokenResolver
from ivr.journey.kpi import Kpis
from ivr.live.reload import ReloadResult
from ivr.metrics.prometheus import mount_metrics
from ivr.sms import SmsService, mount_sms
from ivr.ussd import UssdGateway, mount_ussd

HealthProbe = Callable[[], Mapping[str, object]]


@dataclass(frozen=True)
class AgentApiParts:
    tokens: TokenResolver
    journey: JourneyReader
    api_key: str
    names: CustomerNames | None = None


Reloader = Callable[[], Awaitable[ReloadResult]]


def build_app(health: HealthProbe, reload: Reloader, *, agent_api: AgentApiParts | None = None,
              kpis: Callable[[], Kpis] | None = None, sms: SmsService | None = None,
              ussd: UssdGateway | None = None) -> web.Application:
    app = web.Application()
    if sms is not None:
        mount_sms(app, sms)
    if ussd is not None:
        mount_ussd(app, ussd)
    if agent_api is not None:
        mount_agent_api(app, agent_api.tokens, agent_api.journey, agent_api.api_key, names=agent_api.names)
    if kpis is not None:
        mount_metrics(app, kpis)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **health()})

    async def admin_reload(_request: web.Request) -> web.Response:
        result = await reload()
        body = {"ok": result.ok, "version": result.version, "generation": result.generation,
                "problems": [str(p) for p in result.problems]}
        return web.json_response(body, status=200 if result.ok else 422)

    app.router.add_get("/healthz", healthz)
    app.router.add_post("/admin/reload", admin_reload)
    return app
