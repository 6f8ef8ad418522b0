"""``ivr serve``: run what the composition root built, in the foreground.

FastAGI (for Asterisk) and HTTP (gateway, agent API, metrics, health, admin reload) in one
process, logging to stderr. SIGHUP, ``ivr reload`` (POST /admin/reload) or a change to a
watched file reloads the menus and the routing rules together, parsed off the event loop;
anything invalid is refused and the live configuration kept. SIGTERM or SIGINT stops accepting new calls, lets live calls finish for up to
``DRAIN_TIMEOUT_S``, then exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Coroutine, Mapping

from aiohttp import web

from ivr.backoff import Backoff
from ivr.composition import build_controller, edited_files
from ivr.errors import IvrError
from ivr.flow.errors import TreeInvalid
from ivr.live.reload import Reloader, ReloadResult
from ivr.routing.rules import RoutingInvalid
from ivr.runtime import event_loop
from ivr.runtime.gc_policy import tune_for_serving
from ivr.serve.http_app import AgentApiParts, build_app
from ivr.serve.watch import FileWatch
from ivr.settings import Settings
from ivr.voice.ami import AmiClient
from ivr.voice.fastagi import FastAgiServer

DRAIN_TIMEOUT_S = 10.0
log = logging.getLogger("ivr.serve")


async def watch_files(reloader: Reloader, watch: FileWatch, interval: float) -> None:
    """Reload when an edited file changes; the watcher outlives any one bad reload."""
    while True:
        await asyncio.sleep(interval)
        try:
            if watch.changed():
                await reloader.reload_async("files changed")
        except Exception:  # noqa: BLE001
            log.exception("file watcher failed; next check in %.0f s", interval)


async def follow_ami(settings: Settings, on_event: Callable[[Mapping[str, str]], None]) -> None:
    """Agent events for the journey. Calls never wait on AMI: while it is down, only the
    "which agent answered" events are missed, and the connection is retried."""
    host = "127.0.0.1" if settings.ami.bind in ("0.0.0.0", "") else settings.ami.bind
    ami = AmiClient(host, settings.ami.port, settings.ami.user, settings.ami.secret)
    ami.subscribe(on_event)
    backoff = Backoff()
    while True:
        try:
            await ami.connect()
            backoff.reset()
            log.info("following AMI events on %s:%d", host, settings.ami.port)
            await asyncio.Event().wait()  # panoramisk reconnects by itself once connected
        except asyncio.CancelledError:
            ami.close()
            raise
        except Exception as exc:  # noqa: BLE001
            delay = backoff.next_delay()
            log.warning("AMI not available (%s); agent events are not recorded, retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    started = time.monotonic()
    try:
        controller = await build_controller(settings)
    except (TreeInvalid, RoutingInvalid) as exc:
        raise IvrError(f"the configuration is invalid, not starting:\n{exc}",
                       hint="run `ivr validate` and fix the files it lists", error_id="config-invalid") from None
    trees = controller.trees
    agi = FastAgiServer(read_timeout=settings.agi.read_timeout)
    agi.add_route("call", controller.call_handler)
    agi.add_route("selftest", controller.selftest_handler)
    try:
        agi_server = await asyncio.start_server(agi.handler, settings.agi.host, settings.agi.port)
    except OSError as exc:
        raise IvrError(f"cannot listen for FastAGI on {settings.agi.host}:{settings.agi.port}: {exc}",
                       hint="another `ivr serve` may be running; set [agi] port / IVR_AGI_PORT",
                       error_id="port-in-use") from None

    def health() -> dict[str, object]:
        tree = trees.current()
        return {"live_calls": len(agi.live), "uptime_s": round(time.monotonic() - started, 1),
                "tree_version": tree.version, "tree_generation": trees.generation}

    reloader = controller.reloader

    async def admin_reload() -> ReloadResult:
        return await reloader.reload_async("admin request")

    app = build_app(health, admin_reload,
                    agent_api=AgentApiParts(controller.tokens, controller.journey, settings.agent_api.key,
                                                  controller.names),
                    kpis=controller.kpis.snapshot, sms=controller.sms,
                    ussd=controller.ussd)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http.host, settings.http.port)
    try:
        await site.start()
    except OSError as exc:
        agi_server.close()
        await runner.cleanup()
        raise IvrError(f"cannot listen for HTTP on {settings.http.host}:{settings.http.port}: {exc}",
                       hint="set [http] port / IVR_HTTP_PORT", error_id="port-in-use") from None
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: _spawn(reloader.reload_async("SIGHUP")))
    except (NotImplementedError, RuntimeError):  # not the main thread (tests)
        pass
    watcher = asyncio.create_task(watch_files(reloader, FileWatch(edited_files(settings)),
                                              settings.menus.watch_interval)) \
        if settings.menus.watch_interval > 0 else None
    ami_task = asyncio.create_task(follow_ami(settings, controller.agent_events.on_event))
    tune_for_serving()
    log.info("FastAGI on %s:%d, HTTP on %s:%d, menu tree version %s", settings.agi.host, settings.agi.port,
             settings.http.host, settings.http.port, trees.current().version)
    await stop.wait()
    log.info("stopping: no new calls, %d live", len(agi.live))
    if watcher:
        watcher.cancel()
    agi_server.close()
    if agi.live:
        await asyncio.wait(list(agi.live), timeout=DRAIN_TIMEOUT_S)
    ami_task.cancel()
    await runner.cleanup()
    await controller.close()
    log.info("stopped")


_background: set[asyncio.Task[ReloadResult]] = set()


def _spawn(reload: Coroutine[None, None, ReloadResult]) -> None:
    """A reload asked for by a signal: its task is kept until done (the loop holds only weak references)."""
    task = asyncio.get_running_loop().create_task(reload)
    _background.add(task)
    task.add_done_callback(_background.discard)


def run(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    event_loop.run(main(), settings.runtime.event_loop)
    return 0
