"""The controller's HTTP side (aiohttp): health and admin for now.

The USSD and SMS gateway, the agent context API and metrics mount here in later work.
``POST /admin/reload`` answers on the HTTP listener, which is bound to 127.0.0.1 by default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web

from ivr.flow.store import ReloadResult

HealthProbe = Callable[[], Mapping[str, object]]
Reloader = Callable[[], ReloadResult]


def build_app(health: HealthProbe, reload: Reloader) -> web.Application:
    app = web.Application()

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **health()})

    async def admin_reload(_request: web.Request) -> web.Response:
        result = reload()
        body = {"ok": result.ok, "version": result.version, "generation": result.generation,
                "problems": [str(p) for p in result.problems]}
        return web.json_response(body, status=200 if result.ok else 422)

    app.router.add_get("/healthz", healthz)
    app.router.add_post("/admin/reload", admin_reload)
    return app
