"""The composition root of ``ivr serve``: builds the adapters, wires them, runs them.

FastAGI (for Asterisk) and HTTP (gateway, agent API, metrics, health) in one process, in
the foreground, logging to stderr. SIGTERM or SIGINT stops accepting new calls, lets live
calls finish for up to ``DRAIN_TIMEOUT_S``, then exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from aiohttp import web

from ivr.errors import IvrError
from ivr.gateway.http import build_app
from ivr.settings import Settings
from ivr.voice.controller import CallController, minimal_flow
from ivr.voice.fastagi import FastAgiServer

DRAIN_TIMEOUT_S = 10.0
log = logging.getLogger("ivr.serve")


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    started = time.monotonic()
    agi = FastAgiServer(read_timeout=settings.agi.read_timeout)
    agi.add_route("call", CallController(minimal_flow))
    try:
        agi_server = await asyncio.start_server(agi.handler, settings.agi.host, settings.agi.port)
    except OSError as exc:
        raise IvrError(f"cannot listen for FastAGI on {settings.agi.host}:{settings.agi.port}: {exc}",
                       hint="another `ivr serve` may be running; set [agi] port / IVR_AGI_PORT",
                       error_id="port-in-use") from None

    def health() -> dict[str, object]:
        return {"live_calls": len(agi.live), "uptime_s": round(time.monotonic() - started, 1)}

    runner = web.AppRunner(build_app(health), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http.host, settings.http.port)
    try:
        await site.start()
    except OSError as exc:
        agi_server.close()
        await runner.cleanup()
        raise IvrError(f"cannot listen for HTTP on {settings.http.host}:{settings.http.port}: {exc}",
                       hint="set [http] port / IVR_HTTP_PORT", error_id="port-in-use") from None
    log.info("FastAGI on %s:%d, HTTP on %s:%d", settings.agi.host, settings.agi.port,
             settings.http.host, settings.http.port)
    await stop.wait()
    log.info("stopping: no new calls, %d live", len(agi.live))
    agi_server.close()
    if agi.live:
        await asyncio.wait(list(agi.live), timeout=DRAIN_TIMEOUT_S)
    await runner.cleanup()
    log.info("stopped")


def run(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
    return 0
