"""The controller's HTTP side (aiohttp). For now: ``GET /healthz``.

The USSD and SMS gateway, the agent context API and metrics mount here in later work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web

HealthProbe = Callable[[], Mapping[str, object]]


def build_app(health: HealthProbe) -> web.Application:
    app = web.Application()

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **health()})

    app.router.add_get("/healthz", healthz)
    return app
