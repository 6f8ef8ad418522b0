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
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from ivr.agent.ports import CallControl
from ivr.backoff import Backoff
from ivr.composition import Controller, build_controller, edited_files, exposure_secrets
from ivr.errors import IvrError
from ivr.exposure import asterisk_listeners, controller_listeners, is_loopback, refuse_weak_secrets
from ivr.flow.errors import TreeInvalid
from ivr.journey.lease import Lease
from ivr.live.reload import Reloader, ReloadResult
from ivr.live.trees import TreeStore
from ivr.refusals import RefusalGuard, trusted_networks
from ivr.routing.rules import RoutingInvalid
from ivr.runtime import event_loop
from ivr.runtime.gc_policy import tune_for_serving
from ivr.serve.demo_backend import mount_demo_backend
from ivr.serve.http_app import AdminAccess, AgentApiParts, build_app
from ivr.serve.recogniser import RecogniserProcess
from ivr.serve.watch import FileWatch
from ivr.settings import Settings, local_url
from ivr.voice import agent_events, callback_dialer, queue_monitor
from ivr.voice.ami import AmiClient
from ivr.voice.ari.app import StasisApp
from ivr.voice.ari.client import AriClient
from ivr.voice.ari.peers import OrphanClaims, PeerWatch
from ivr.voice.call_control import AmiCallControl
from ivr.voice.callback_dialer import CallbackDialer
from ivr.voice.drivers import publish_drivers, wanted
from ivr.voice.fastagi import FastAgiServer
from ivr.voice.prompt_files import PromptFiles
from ivr.voice.queue_monitor import QueueBoard, QueueMonitor, keep_fresh
from ivr.voice.restarts import RestartWatch
from ivr.voice.transfer_routing import TransferRouting

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


#: Every AMI event a controller reads; its sessions ask Asterisk for these only.
CONTROLLER_EVENTS = (*agent_events.EVENTS, *queue_monitor.EVENTS, *callback_dialer.EVENTS)


def ami_client(settings: Settings, host: str = "", port: int = 0) -> AmiClient:
    return AmiClient(host or settings.ami.local_host, port or settings.ami.port, settings.ami.user,
                     settings.ami.secret, events=CONTROLLER_EVENTS)


async def follow_ami(ami: AmiClient, on_event: Callable[[Mapping[str, str]], None],
                     on_connect: Callable[[], Coroutine[None, None, None]] | None = None) -> None:
    """Agent events for the journey. Calls never wait on AMI: while it is down, only the
    "which agent answered" events are missed, and the connection is retried."""
    ami.subscribe(on_event)
    backoff = Backoff()
    while True:
        try:
            await ami.connect()
            backoff.reset()
            log.info("following AMI events on %s:%d", ami.host, ami.port)
            if on_connect is not None:
                await _logged(on_connect)
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
    # Before anything opens: a demo secret behind a listener other machines reach is refused.
    refuse_weak_secrets(controller_listeners(settings) + asterisk_listeners(settings), exposure_secrets(settings))
    try:
        controller = await build_controller(settings)
    except (TreeInvalid, RoutingInvalid) as exc:
        raise IvrError(f"the configuration is invalid, not starting:\n{exc}",
                       hint="run `ivr validate` and fix the files it lists", error_id="config-invalid") from None
    trees = controller.trees
    agi = FastAgiServer(read_timeout=settings.agi.read_timeout)
    agi.add_route("call", controller.call_handler)
    agi.add_route("selftest", controller.selftest_handler)
    agi.add_route("transfer", TransferRouting(controller.routing, controller.lookup, controller.tokens,
                                              controller.journey))
    try:
        agi_server = await asyncio.start_server(agi.handler, settings.agi.host, settings.agi.port)
    except OSError as exc:
        raise IvrError(f"cannot listen for FastAGI on {settings.agi.host}:{settings.agi.port}: {exc}",
                       hint="another `ivr serve` may be running; set [agi] port / IVR_AGI_PORT",
                       error_id="port-in-use") from None

    background: list[asyncio.Task[None]] = []
    recogniser: RecogniserProcess | None = None
    speech = controller.speech
    if speech is not None and speech.model is not None:
        recogniser = RecogniserProcess(speech.model, settings.speech.host, settings.speech.port,
                                       settings.speech.threads)
        background.append(asyncio.create_task(recogniser.run()))
    ami = ami_client(settings)
    # Every Asterisk this controller serves over ARI (one with [ari] nodes unset): its own
    # Stasis application on each, and the AMI there for the numbers' drivers and orphans.
    nodes = [_AriNode.of(settings, host, ari_port, ami if (host, ami_port) == (ami.host, ami.port) else
                         ami_client(settings, host, ami_port))
             for host, ari_port, ami_port in settings.ari.node_list(settings.ami.port)] if settings.ari.app else []
    home = next((n for n in nodes if n.ami is ami), None) or _AriNode(ami, None)

    # Each Asterisk's queues, polled over its AMI: a call hears the place and wait of the
    # queues of the Asterisk it is on (by its system name), else of the home one.
    monitor = QueueMonitor(ami)
    monitors = {ami: monitor} | {n.ami: QueueMonitor(n.ami) for n in nodes if n.ami is not ami}
    controller.use_queues(QueueBoard(monitor, list(monitors.values())).snapshot)
    for polled in monitors.values():
        background.append(asyncio.create_task(keep_fresh(polled)))

    # Callbacks: every controller may dial, the one holding the lease does, always against the
    # same Asterisk ([routing] callback_node), where the places it made are.
    dialer_ami = _callback_ami(settings, ami, list(monitors))
    dialer_monitor = monitors.get(dialer_ami) or QueueMonitor(dialer_ami)
    dialer = CallbackDialer(dialer_ami, controller.callbacks.book, dialer_monitor, lambda: controller.callback_policy,
                            tokens=controller.tokens, agent_events=controller.agent_events,
                            confirmations=controller.sms_confirmations,
                            whisper=PromptFiles(settings.home / "sounds", settings.prompts.asterisk_dir),
                            whisper_language=trees.current().languages[0],
                            timezone=controller.routing_config().hours.timezone,
                            hold_s=max(300, settings.tokens.ttl - 300), is_open=controller.callbacks_open)
    dialing = settings.routing.callback_dialer
    lease = Lease(controller.journey, "callback-dialer", f"{socket.gethostname()}:{os.getpid()}:"
                  f"{settings.ari.app or settings.agi.port}") if dialing else None
    if lease is not None:
        background.append(asyncio.create_task(dialer.run(lease=lease)))

    def events_of(node_ami: AmiClient) -> Callable[[Mapping[str, str]], None]:
        """One Asterisk's AMI events: join times for its queue monitor, wake-ups for the dialer."""
        node_monitor = monitors.get(node_ami) or dialer_monitor
        wakes_dialer = dialing and node_ami is dialer_ami

        def on_event(event: Mapping[str, str]) -> None:
            node_monitor.on_event(event)
            if wakes_dialer:
                dialer.on_event(event)
        return on_event

    on_home_event = events_of(ami)

    def on_ami_event(event: Mapping[str, str]) -> None:
        controller.agent_events.on_event(event)  # agent events are read on the home Asterisk
        on_home_event(event)

    if dialer_ami not in monitors:
        background.append(asyncio.create_task(follow_ami(dialer_ami, events_of(dialer_ami))))

    async def publish_all() -> None:
        """After a reload: every Asterisk whose AMI is up (one that is down learns on reconnect)."""
        for node in nodes or [home]:
            if node.ami.connected or node is home:
                await node.publish(trees)

    stasis_apps: list[StasisApp] = []
    # Several controllers' applications: the calls of one that dies are taken over by another.
    peers = [a for a in settings.ari.app_list().split("|") if a and a != settings.ari.app] if nodes else []
    claims = OrphanClaims(controller.journey, settings.ari.app) if peers else None
    for node in nodes:
        assert node.ari is not None
        controller.stack.push_async_callback(node.ari.close)
        stasis = StasisApp(node.ari, settings.ari.app, {"call": controller.call_handler,
                                                        "selftest": controller.selftest_handler},
                           controller.journey, speech=speech is not None, on_connect=node.publisher(trees),
                           deadman_s=settings.ari.deadman, redirect=node.ami.redirect,
                           claim=claims.on(node.ari.base_url) if claims is not None else None)
        stasis_apps.append(stasis)
    watch = PeerWatch(settings.ari.app, peers, controller.journey, stasis_apps) if peers else None
    if watch is not None:
        await watch.beat()  # before the application exists: a peer never sees it holding calls unbeaten
        background.append(asyncio.create_task(watch.run()))
    for node, stasis in zip(nodes, stasis_apps, strict=True):
        background.append(asyncio.create_task(stasis.run()))
        if node.ami is not ami:  # the home AMI is followed below, with the agent events
            background.append(asyncio.create_task(follow_ami(node.ami, events_of(node.ami),
                                                             node.publisher(trees))))
    background.append(asyncio.create_task(_republish_on_reload(trees, publish_all)))

    def live_calls() -> set[asyncio.Task[None]]:
        return agi.live.union(*(s.live for s in stasis_apps))

    def health() -> dict[str, object]:
        tree = trees.current()
        return {"live_calls": len(live_calls()), "uptime_s": round(time.monotonic() - started, 1), "pid": os.getpid(),
                "tree_version": tree.version, "tree_generation": trees.generation,
                "ari_connected": all(s.connected.is_set() for s in stasis_apps) if stasis_apps else None,
                # the Asterisks (system names) whose queues this controller has polled
                "queues_of": sorted(m.system_name for m in monitors.values() if m.system_name is not None),
                # active: this controller dials callbacks; standby: another holds the lease
                "callback_dialer": ("active" if dialer.active else "standby") if dialing else None,
                "recogniser_pid": recogniser.pid if recogniser is not None else None}

    reloader = controller.reloader

    async def admin_reload() -> ReloadResult:
        return await reloader.reload_async("admin request")

    app = controller_http_app(settings, controller, health, admin_reload, AmiCallControl(ami, controller.agent_events))
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
    # After Asterisk restarts: the routed calls it forgot are journaled, the numbers' drivers told again.
    restarts = RestartWatch(ami, controller.agent_events, home.publisher(trees))
    ami.after_relogin(restarts.after_relogin)

    async def on_home_connect() -> None:
        await home.publish(trees)
        await restarts.remember()

    ami_task = asyncio.create_task(follow_ami(ami, on_ami_event, on_home_connect))
    tune_for_serving()
    log.info("FastAGI on %s:%d, HTTP on %s:%d, menu tree version %s", settings.agi.host, settings.agi.port,
             settings.http.host, settings.http.port, trees.current().version)
    await stop.wait()
    log.info("stopping: no new calls, %d live", len(live_calls()))
    if watcher:
        watcher.cancel()
    agi_server.close()
    if live_calls():
        await asyncio.wait(list(live_calls()), timeout=DRAIN_TIMEOUT_S)
    if watch is not None:
        await watch.stop()  # calls still here after the drain are taken over by a peer at once
    if lease is not None:
        await lease.release()  # another controller dials from its next round
    ami_task.cancel()
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    await runner.cleanup()
    await controller.close()
    log.info("stopped")


def controller_http_app(settings: Settings, controller: Controller, health: Callable[[], Mapping[str, object]],
                        reload: Callable[[], Coroutine[None, None, ReloadResult]],
                        call_control: CallControl, refusals: RefusalGuard | None = None) -> web.Application:
    """Everything ``ivr serve`` answers on its HTTP listener, over the controller's parts."""
    app = build_app(health, reload,
                    admin=AdminAccess(settings.admin.key, settings.admin.metrics_key,
                                      metrics_open=is_loopback(settings.http.host)),
                    agent_api=AgentApiParts(controller.tokens, controller.journey, settings.agent_api.key,
                                            controller.names, desk=controller.agent_desk(call_control),
                                            feed=controller.feed, audit=controller.journey),
                    kpis=controller.kpis.snapshot, sms=controller.sms, spool=controller.spool,
                    ussd=controller.ussd, context_api=controller.context_api,
                    refusals=refusals or RefusalGuard(trusted_proxies=trusted_networks(settings.http.trusted_proxies)))
    if settings.integrations.demo_backend:
        mount_demo_backend(app)
    return app


@dataclass
class _AriNode:
    """One Asterisk this controller serves over ARI: its AMI, its ARI client, and a lock so
    that an AMI and an ARI (re)connect never publish the numbers' drivers at once."""

    ami: AmiClient
    ari: AriClient | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def of(cls, settings: Settings, host: str, ari_port: int, ami: AmiClient) -> _AriNode:
        return cls(ami, AriClient(local_url("http", host, ari_port), settings.ari.user, settings.ari.password))

    async def publish(self, trees: TreeStore) -> None:
        async with self.lock:
            await publish_drivers(self.ami, wanted(trees.current()))

    def publisher(self, trees: TreeStore) -> Callable[[], Coroutine[None, None, None]]:
        return lambda: self.publish(trees)


def _callback_ami(settings: Settings, home: AmiClient, known: list[AmiClient]) -> AmiClient:
    """The AMI of the Asterisk that keeps callbacks' places: ``[routing] callback_node``, else home."""
    where = settings.routing.callback_node_address()
    if where is None or where == (home.host, home.port):
        return home
    found = next((a for a in known if (a.host, a.port) == where), None)
    return found or ami_client(settings, where[0], where[1])


async def _logged(hook: Callable[[], Coroutine[None, None, None]]) -> bool:
    try:
        await hook()
        return True
    except Exception as exc:  # noqa: BLE001 - retried after the next reload or reconnect
        log.warning("could not tell Asterisk which driver answers each number: %s", exc)
        return False


async def _republish_on_reload(trees: TreeStore, publish: Callable[[], Coroutine[None, None, None]],
                               interval_s: float = 1.0) -> None:
    """After a reload, Asterisk learns the numbers' drivers again (until it has, every second)."""
    seen = trees.generation
    while True:
        await asyncio.sleep(interval_s)
        if trees.generation != seen and await _logged(publish):
            seen = trees.generation


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
