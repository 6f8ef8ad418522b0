"""``ivr serve``: run what the composition root built, in the foreground.

FastAGI (for Asterisk) and HTTP (gateway, agent API, metrics, health, admin reload) in one
process, logging to stderr. SIGHUP, ``ivr reload`` (POST /admin/reload) or a change to a
watched menu file reloads the tree; a tree that fails validation is refused and the live
one kept. SIGTERM or SIGINT stops accepting new calls, lets live calls finish for up to
``DRAIN_TIMEOUT_S``, then exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Mapping

from aiohttp import web

from ivr.composition import build_controller
from ivr.errors import IvrError
from ivr.flow.errors import TreeInvalid
from ivr.routing.rules import RoutingInvalid
from ivr.runtime import event_loop
from ivr.runtime.gc_policy import tune_for_serving
from ivr.serve.http_app import AgentApiParts, build_app
from ivr.serve.trees import ReloadResult, TreeStore
from ivr.settings import Settings
from ivr.voice.ami import AmiClient
from ivr.voice.fastagi import FastAgiServer

DRAIN_TIMEOUT_S = 10.0
log = logging.getLogger("ivr.serve")


def reload_tree(trees: TreeStore, why: str) -> ReloadResult:
    result = trees.reload()
    if result.ok:
        log.info("menu tree reloaded (%s): version %s, generation %d", why, result.version, result.generation)
    else:
        log.error("menu tree NOT reloaded (%s): %d problem(s); version %s stays live:\n%s", why,
                  len(result.problems), result.version, "\n".join(str(p) for p in result.problems))
    return result


async def watch_menus(trees: TreeStore, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            if trees.changed_on_disk():
                reload_tree(trees, "files changed")
        except Exception:  # noqa: BLE001 - the watcher must outlive any one bad reload
            log.exception("menu watcher failed; next check in %.0f s", interval)


AMI_RETRY_S = 5.0


async def follow_ami(settings: Settings, on_event: Callable[[Mapping[str, str]], None]) -> None:
    """Agent events for the journey. Calls never wait on AMI: while it is down, only the
    "which agent answered" events are missed, and the connection is retried."""
    host = "127.0.0.1" if settings.ami.bind in ("0.0.0.0", "") else settings.ami.bind
    ami = AmiClient(host, settings.ami.port, settings.ami.user, settings.ami.secret)
    ami.subscribe(on_event)
    while True:
        try:
            await ami.connect()
            log.info("following AMI events on %s:%d", host, settings.ami.port)
            await asyncio.Event().wait()  # panoramisk reconnects by itself once connected
        except asyncio.CancelledError:
            ami.close()
            raise
        except Exception as exc:  # noqa: BLE001
            log.warning("AMI not available (%s); agent events are not recorded, retrying in %.0f s", exc,
                        AMI_RETRY_S)
            await asyncio.sleep(AMI_RETRY_S)


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

    def admin_reload() -> ReloadResult:
        return reload_tree(trees, "admin request")

    app = build_app(health, admin_reload,
                    agent_api=AgentApiParts(controller.tokens, controller.journey, settings.agent_api.key),
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
        loop.add_signal_handler(signal.SIGHUP, lambda: reload_tree(trees, "SIGHUP"))
    except (NotImplementedError, RuntimeError):  # not the main thread (tests)
        pass
    watcher = asyncio.create_task(watch_menus(trees, settings.menus.watch_interval)) \
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
