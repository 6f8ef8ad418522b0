"""The whole scale-out topology on one machine: ``ivr cluster up|down|status`` (``./dev cluster``).

Kamailio on the cluster's SIP port spreads calls over N Asterisk roots; every Asterisk
reaches every controller over FastAGI (the dialplan's ``[ivr-agi]`` failover list); the
controllers share one PostgreSQL (journey, USSD sessions, callbacks). Each part is an
existing engine run as in production, only on other ports:

- Asterisk n: its own root (``<[asterisk] root>-n``, unpacked from the cached root) and
  every single-node port plus ``n * port_step``;
- controller m: ``ivr serve`` with FastAGI and HTTP ports plus ``m * port_step``; its own
  Stasis application (``ivr-m``) on every Asterisk, which offers each ARI call to the
  applications in turn; AMI (agent events, queues, callbacks) on Asterisk
  ``(m - 1) % N + 1`` (its home node); the journey on PostgreSQL;
- PostgreSQL: ``ivr/runtime/postgres.sh`` on a private socket, deleted by ``down``.

Processes are found by what they are (a root, a config path, an environment marker), so
``down`` after a crash or from another shell stops everything and leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import IvrError
from ivr.runtime import processes, tcp_ports
from ivr.runtime.kamailio import Destination, LocalKamailio, SipFront
from ivr.runtime.local_asterisk import LocalAsterisk
from ivr.settings import Settings

CONTROLLER_START_TIMEOUT_S = 30.0
CONTROLLER_STOP_TIMEOUT_S = 10.0
MEMBER_ENV = "IVR_CLUSTER_MEMBER"  # marks a controller process as ``<state dir>:controller-<m>``
POSTGRES_SH = Path(__file__).with_name("postgres.sh")

Log = Callable[[str], None]


class ClusterError(IvrError):
    error_id = "cluster-error"


@dataclass(frozen=True)
class ControllerSpec:
    number: int
    home_node: int
    agi_port: int
    http_port: int
    env: Mapping[str, str]  # IVR_* overrides on top of this process's environment

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/healthz"


@dataclass(frozen=True)
class ControllerState:
    spec: ControllerSpec
    pids: tuple[int, ...]
    healthy: bool


@dataclass(frozen=True)
class ClusterStatus:
    sip: str
    destinations: tuple[Destination, ...]
    asterisks: tuple[tuple[int, bool, int], ...]  # (node, running, SIP port)
    controllers: tuple[ControllerState, ...]
    postgres: str  # the DSN, or "" when stopped

    def lines(self) -> list[str]:
        out = [f"Kamailio on {self.sip}: " + (", ".join(
            f"{d.uri} {'active' if d.active else 'down'} ({d.flags})" for d in self.destinations) or "stopped")]
        out += [f"Asterisk {n}: {'running' if up else 'stopped'}, SIP {port}" for n, up, port in self.asterisks]
        out += [f"controller {c.spec.number}: " + (f"pid {', '.join(map(str, c.pids))}, " if c.pids else "")
                + f"{'healthy' if c.healthy else 'down'}, FastAGI {c.spec.agi_port}, HTTP {c.spec.http_port}, "
                f"home Asterisk {c.spec.home_node}" for c in self.controllers]
        out.append(f"PostgreSQL: {self.postgres or 'stopped'}")
        return out


class Cluster:
    def __init__(self, settings: Settings, *, log: Log | None = None) -> None:
        self.settings = settings
        self.config = settings.cluster
        if self.config.asterisks < 1 or self.config.controllers < 1:
            raise ClusterError("[cluster] needs at least one Asterisk and one controller",
                               hint="set asterisks and controllers in [cluster]")
        self.state_dir = settings.path(self.config.state_dir).resolve()
        self.log: Log = log or (lambda _msg: None)

    # ------------------------------------------------------------------ the plan
    def offset(self, n: int) -> int:
        return n * self.config.port_step

    def controller_addresses(self) -> list[str]:
        host = self.settings.agi.host
        return [f"{host}:{self.settings.agi.port + self.offset(m)}" for m in range(1, self.config.controllers + 1)]

    def app_name(self, m: int) -> str:
        """Controller ``m``'s Stasis application ("" when ARI is off)."""
        return f"{self.settings.ari.app}-{m}" if self.settings.ari.app else ""

    def asterisk_settings(self, n: int) -> Settings:
        """Asterisk ``n``'s settings: its own root and ports; every controller in its AGI and ARI lists."""
        s, step = self.settings, self.offset(n)
        apps = ",".join(self.app_name(m) for m in range(1, self.config.controllers + 1)) if s.ari.app else ""
        return dataclasses.replace(
            s,
            asterisk=dataclasses.replace(s.asterisk, root=f"{s.asterisk.root_path()}-{n}", system_name=f"asterisk{n}"),
            sip=dataclasses.replace(s.sip, port=s.sip.port + step),
            ami=dataclasses.replace(s.ami, port=s.ami.port + step),
            ari=dataclasses.replace(s.ari, port=s.ari.port + step, apps=apps),
            agi=dataclasses.replace(s.agi, controllers=",".join(self.controller_addresses())))

    def ari_nodes(self) -> str:
        """Every Asterisk as ``host:ari_port:ami_port``: each controller serves all of them over ARI."""
        return ",".join(f"{node.ami.local_host}:{node.ari.port}:{node.ami.port}"
                        for node in (self.asterisk_settings(n) for n in range(1, self.config.asterisks + 1)))

    def asterisks(self) -> list[LocalAsterisk]:
        return [LocalAsterisk(self.asterisk_settings(n), log=self.log) for n in range(1, self.config.asterisks + 1)]

    def kamailio(self) -> LocalKamailio:
        front = SipFront(listen=self.settings.sip.bind, port=self.config.sip_port,
                         asterisks=[(self.settings.sip.bind, self.settings.sip.port + self.offset(n))
                                    for n in range(1, self.config.asterisks + 1)],
                         probe_interval_s=self.config.probe_interval)
        return LocalKamailio(front, self.state_dir / "kamailio", self.settings.home / "config" / "kamailio" /
                             "kamailio.cfg", log=self.log)

    def controller(self, m: int, dsn: str = "") -> ControllerSpec:
        s, step = self.settings, self.offset(m)
        home = (m - 1) % self.config.asterisks + 1
        node = self.asterisk_settings(home)
        first = self.asterisk_settings(1)
        env = {
            MEMBER_ENV: self.member(m),
            "IVR_AGI_PORT": str(s.agi.port + step),
            "IVR_HTTP_PORT": str(s.http.port + step),
            "IVR_AMI_PORT": str(node.ami.port),
            "IVR_ARI_PORT": str(node.ari.port),
            "IVR_SIP_PORT": str(node.sip.port),
            "IVR_AGI_CONTROLLERS": node.agi.controllers,
            "IVR_ARI_APP": self.app_name(m),
            "IVR_ARI_APPS": node.ari.apps,
            "IVR_ARI_NODES": self.ari_nodes() if s.ari.app else "",
            "IVR_ASTERISK_ROOT": node.asterisk.root,
            # One customer directory for all (a real CRM is one HTTP service); the first seeds it.
            "IVR_CRM_SQLITE_PATH": str(self.state_dir / "crm.sqlite"),
            "IVR_JOURNEY_BACKEND": "postgres",
            "IVR_JOURNEY_POSTGRES_DSN": dsn,
            # Every controller may dial callbacks (one at a time, by lease), all on Asterisk 1.
            "IVR_ROUTING_CALLBACK_DIALER": "true",
            "IVR_ROUTING_CALLBACK_NODE": f"{first.ami.local_host}:{first.ami.port}",
        }
        return ControllerSpec(m, home, s.agi.port + step, s.http.port + step, env)

    def member(self, m: int) -> str:
        return f"{self.state_dir}:controller-{m}"

    # ------------------------------------------------------------------ up / down
    def up(self) -> ClusterStatus:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        dsn = self.postgres("start")
        self.log(f"PostgreSQL: {dsn}")
        for asterisk in self.asterisks():
            asterisk.up()
        self.kamailio().up()
        for m in range(1, self.config.controllers + 1):
            self.start_controller(m, dsn)  # one after another: the first creates the journey schema
        return self.status()

    def down(self) -> None:
        for m in range(1, self.config.controllers + 1):
            self.stop_controller(m)
        self.kamailio().down()
        for asterisk in self.asterisks():
            asterisk.down()
        self.postgres("stop")
        self.log("cluster stopped")

    def status(self) -> ClusterStatus:
        kamailio = self.kamailio()
        try:
            destinations = tuple(kamailio.destinations()) if kamailio.pids() else ()
        except IvrError:
            destinations = ()
        asterisks = tuple((n, bool(a.asterisk_pids()), a.settings.sip.port)
                          for n, a in enumerate(self.asterisks(), start=1))
        dsn = self.postgres("url") if self._postgres_running() else ""
        controllers = tuple(ControllerState(spec, tuple(self.controller_pids(spec.number)), _healthy(spec))
                            for spec in (self.controller(m, dsn) for m in range(1, self.config.controllers + 1)))
        return ClusterStatus(f"{self.settings.sip.bind}:{self.config.sip_port}", destinations, asterisks,
                             controllers, dsn)

    # ------------------------------------------------------------------ controllers
    def controller_pids(self, m: int) -> list[int]:
        return processes.by_environ(MEMBER_ENV, self.member(m))

    def start_controller(self, m: int, dsn: str | None = None) -> ControllerSpec:
        """Start controller ``m`` (if it is not running) and wait until it is healthy."""
        spec = self.controller(m, dsn if dsn is not None else self.postgres("url"))
        if self.controller_pids(m) and _healthy(spec):
            self.log(f"controller {m} already running")
            return spec
        self.stop_controller(m)
        tcp_ports.require_free([tcp_ports.PortNeed(spec.agi_port, "tcp", self.settings.agi.host, "FastAGI"),
                                tcp_ports.PortNeed(spec.http_port, "tcp", self.settings.http.host, "HTTP")])
        log_path = self.state_dir / f"controller-{m}.log"
        with open(log_path, "ab") as sink:
            proc = subprocess.Popen([sys.executable, "-m", "ivr", "serve"], env={**os.environ, **spec.env},
                                    stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True, cwd=self.settings.home)
        deadline = time.monotonic() + CONTROLLER_START_TIMEOUT_S
        while not _healthy(spec, want_ari=bool(self.settings.ari.app)):
            if proc.poll() is not None:
                raise ClusterError(f"controller {m} exited during start-up (exit {proc.returncode})",
                                   hint=f"read {log_path}")
            if time.monotonic() > deadline:
                raise ClusterError(f"controller {m} not healthy within {CONTROLLER_START_TIMEOUT_S:.0f} s",
                                   hint=f"read {log_path}")
            time.sleep(0.1)
        self.log(f"controller {m} (pid {proc.pid}): FastAGI {spec.agi_port}, HTTP {spec.http_port}, "
                 f"home Asterisk {spec.home_node}, log {log_path}")
        return spec

    def stop_controller(self, m: int) -> None:
        for pid in self.controller_pids(m):
            processes.stop(pid, CONTROLLER_STOP_TIMEOUT_S)
            self.log(f"stopped controller {m} (pid {pid})")

    # ------------------------------------------------------------------ PostgreSQL
    def postgres(self, command: str) -> str:
        proc = self._postgres_sh(command, timeout_s=300)
        if proc.returncode != 0:
            raise ClusterError(f"postgres.sh {command} failed: {proc.stderr.strip()[-500:]}",
                               hint="read the PostgreSQL log named above")
        return proc.stdout.strip()

    def _postgres_running(self) -> bool:
        return self._postgres_sh("status", timeout_s=30).returncode == 0

    def _postgres_sh(self, command: str, *, timeout_s: float) -> subprocess.CompletedProcess[str]:
        """``postgres.sh COMMAND`` on the cluster's own PostgreSQL (its socket named by the port)."""
        env = {**os.environ, "IVR_PG_PORT": str(self.config.postgres_port)}
        return subprocess.run(["bash", str(POSTGRES_SH), command], capture_output=True, text=True, env=env,
                              timeout=timeout_s)


def _healthy(spec: ControllerSpec, *, want_ari: bool = False) -> bool:
    try:
        with urllib.request.urlopen(spec.health_url, timeout=1) as resp:
            health = json.loads(resp.read())
    except (OSError, ValueError):
        return False
    return not want_ari or health.get("ari_connected") in (True, None)
