"""The local Kannel: Debian's ``bearerbox`` and ``smsbox`` in the background, for ``ivr kannel up|down``.

``up`` renders ``config/kannel/kannel.conf`` (a template) with the controller's address
and the ``kannel:`` section of ``config/sms.yaml`` into the state directory
(``var/kannel/`` by default, logs beside it), starts bearerbox, waits until its admin,
box and SMSC ports answer, starts smsbox and waits for sendsms. It is idempotent: a
Kannel already running with the same configuration is left alone; one running with a
different configuration, or only half running, is restarted. Processes are found by
their command line (binary + this state directory's kannel.conf), never by a pid file,
so ``down`` after a crash or from another shell still finds them, and leaves none.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ivr.errors import IvrError
from ivr.runtime import processes, tcp_ports
from ivr.runtime.render import render_text
from ivr.settings import Settings

BINARIES = Path("/usr/sbin")
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.05
BOXES = ("bearerbox", "smsbox")

Log = Callable[[str], None]



class KannelError(IvrError):
    """Kannel (bearerbox, smsbox) could not be started, found or stopped."""

    error_id = "kannel-error"


class KannelLink(Protocol):
    """The Kannel section of config/sms.yaml as the runtime reads it (a dataclass:
    :class:`ivr.sms.config.KannelConfig`). The runtime takes it as given, so it never
    imports the SMS channel; the CLI and the composition root load it."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def controller_url(self) -> str: ...

    @property
    def state_dir(self) -> str: ...

    @property
    def admin_port(self) -> int: ...

    @property
    def smsbox_port(self) -> int: ...

    @property
    def fake_smsc_port(self) -> int: ...

    @property
    def sendsms_port(self) -> int: ...

class KannelNotInstalled(KannelError):
    error_id = "kannel-missing"


class KannelPortInUse(KannelError):
    error_id = "port-in-use"


class KannelStartFailed(KannelError):
    error_id = "kannel-start-failed"


@dataclass(frozen=True)
class KannelStatus:
    running: bool  # both boxes up and every port answering
    pids: Mapping[str, int]  # box name -> pid, for the boxes that run
    ports: Mapping[str, bool]  # port name -> answering
    conf: Path
    logs: tuple[Path, ...]

    def describe(self) -> str:
        if not self.pids:
            return f"stopped (config {self.conf})"
        boxes = ", ".join(f"{box} pid {pid}" for box, pid in self.pids.items())
        if self.running:
            return f"running: {boxes} (config {self.conf})"
        silent = ", ".join(name for name, ok in self.ports.items() if not ok) or "a box is missing"
        return f"half up ({silent}): {boxes} (config {self.conf})"


def controller_url(settings: Settings, kannel: KannelLink) -> str:
    """Where Kannel reaches the controller's /sms endpoints: configured, else [http] host:port."""
    return kannel.controller_url or settings.http.local_url


def render_kannel_conf(settings: Settings, kannel: KannelLink, *, url: str, state_dir: Path,
                       template: Path | None = None) -> str:
    """The text of kannel.conf for these settings (also for a container: pass its own state_dir)."""
    source = template or settings.home / "config" / "kannel" / "kannel.conf"
    values: dict[str, object] = dict(settings.flat())
    values.update({f"kannel_{name}": value for name, value in asdict(kannel).items()})
    values.update({"controller_url": url.rstrip("/"), "kannel_state_dir": str(state_dir)})
    for name, value in values.items():
        if isinstance(value, str) and ('"' in value or "\n" in value):
            raise KannelError(f"setting {name} contains a quote or a newline, which kannel.conf cannot hold",
                              hint="choose another value", error_id="kannel-config-invalid")
    return render_text(source.read_text(encoding="utf-8"), values, source=str(source))


class KannelRuntime:
    def __init__(self, settings: Settings, kannel: KannelLink, *, url: str | None = None,
                 state_dir: Path | None = None, binaries: Path = BINARIES, log: Log | None = None) -> None:
        """``kannel`` is config/sms.yaml's section, loaded by the caller (secrets from the environment)."""
        self.settings = settings
        self.kannel = kannel
        self.url = url or controller_url(settings, self.kannel)
        self.state_dir = (state_dir or settings.path(self.kannel.state_dir)).resolve()
        self.conf = self.state_dir / "kannel.conf"
        self.binaries = binaries
        self.log: Log = log or (lambda _msg: None)
        self._children: list[subprocess.Popen[bytes]] = []

    # ------------------------------------------------------------------ queries
    def port_map(self) -> dict[str, int]:
        k = self.kannel
        return {"admin": k.admin_port, "smsbox": k.smsbox_port, "fake_smsc": k.fake_smsc_port,
                "sendsms": k.sendsms_port}

    def log_paths(self) -> tuple[Path, ...]:
        return tuple(self.state_dir / name for name in
                     ("bearerbox.log", "smsbox.log", "bearerbox.out", "smsbox.out", "smsbox-access.log"))

    def pids(self) -> dict[str, int]:
        """Our boxes by command line: ``<binaries>/<box> ... <state_dir>/kannel.conf``."""
        found: dict[str, int] = {}
        for box in BOXES:
            pids = processes.by_argv(box, str(self.conf))
            if pids:
                found[box] = pids[0]
        return found

    def status(self) -> KannelStatus:
        pids = self.pids()
        answering = {name: _answers(port) for name, port in self.port_map().items()}
        running = set(pids) == set(BOXES) and all(answering.values())
        return KannelStatus(running, pids, answering, self.conf, self.log_paths())

    # ------------------------------------------------------------------ up / down
    def up(self) -> KannelStatus:
        binaries = self._check_installed()
        text = render_kannel_conf(self.settings, self.kannel, url=self.url, state_dir=self.state_dir)
        current = self.status()
        same_conf = self.conf.exists() and self.conf.read_text(encoding="utf-8") == text
        if current.running and same_conf:
            self.log(f"already {current.describe()}")
            return current
        if current.pids:
            self.log("restarting Kannel: " + ("its configuration changed" if not same_conf else "it is half up"))
            self.down()
        self._check_no_clash()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(text, encoding="utf-8")
        self._require_free_ports()
        try:
            self._start("bearerbox", binaries["bearerbox"], ("admin", "smsbox", "fake_smsc"))
            self._start("smsbox", binaries["smsbox"], ("sendsms",))
        except BaseException:
            self.down()
            raise
        status = self.status()
        self.log(status.describe())
        return status

    def down(self) -> None:
        """Stop smsbox, then bearerbox (SIGTERM, then SIGKILL); returns when none is left."""
        for box in ("smsbox", "bearerbox"):
            pid = self.pids().get(box)
            if pid is not None:
                self._stop(box, pid)
        for child in self._children:
            try:
                child.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self._children.clear()
        left = self.pids()
        if left:
            raise KannelError(f"Kannel processes survived SIGKILL: {left}", hint="check `ps` for them",
                              error_id="kannel-stop-failed")

    # ------------------------------------------------------------------ steps
    def _check_installed(self) -> dict[str, Path]:
        found = {}
        for box in BOXES:
            path = self.binaries / box
            if not os.access(path, os.X_OK):
                raise KannelNotInstalled(f"{path} is missing: Kannel is not installed",
                                         hint="sudo apt-get install kannel (and kannel-extras for fakesmsc)")
            found[box] = path
        return found

    def _check_no_clash(self) -> None:
        """Kannel must never take a port Asterisk or the controller is configured to use."""
        s = self.settings
        theirs = {s.sip.port: "the SIP", s.ami.port: "the AMI", s.ari.port: "Asterisk's HTTP/ARI", s.agi.port: "the FastAGI",
                  s.http.port: "the controller's HTTP"}
        for name, port in self.port_map().items():
            if port in theirs:
                raise KannelPortInUse(f"Kannel's {name} port {port} is {theirs[port]} port in config/ivr.toml",
                                      hint="choose another port in the kannel: section of config/sms.yaml")

    def _require_free_ports(self) -> None:
        needs = [tcp_ports.PortNeed(port, "tcp", "127.0.0.1", f"Kannel {name} port")
                 for name, port in self.port_map().items()]
        try:
            tcp_ports.require_free(needs)
        except IvrError as exc:
            hint = "stop that process, or choose other ports in the kannel: section of config/sms.yaml"
            raise KannelPortInUse(str(exc), hint=hint) from exc

    def _start(self, box: str, binary: Path, wait_for: tuple[str, ...]) -> None:
        out = self.state_dir / f"{box}.out"
        with open(out, "ab") as sink:
            proc = subprocess.Popen([str(binary), str(self.conf)], stdin=subprocess.DEVNULL, stdout=sink,
                                    stderr=subprocess.STDOUT, start_new_session=True, cwd=self.state_dir)
        self._children.append(proc)
        self.log(f"started {box} (pid {proc.pid})")
        deadline = time.monotonic() + START_TIMEOUT_S
        pending = list(wait_for)
        while pending:
            if proc.poll() is not None:
                raise KannelStartFailed(f"{box} exited during start-up (exit {proc.returncode}): "
                                        f"{_last_problem(out)}", hint=f"read {out} and {self.state_dir / (box + '.log')}")
            if time.monotonic() > deadline:
                raise KannelStartFailed(f"{box} did not open its {', '.join(pending)} port(s) within "
                                        f"{START_TIMEOUT_S:.0f} s", hint=f"read {out}")
            pending = [name for name in pending if not _answers(self.port_map()[name])]
            if pending:
                time.sleep(POLL_S)

    def _stop(self, box: str, pid: int) -> None:
        processes.stop(pid, STOP_TIMEOUT_S)  # SIGTERM, SIGKILL after the timeout; reaps our own child
        self.log(f"stopped {box} (pid {pid})")


def _answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _last_problem(path: Path) -> str:
    """The last ERROR/PANIC line Kannel wrote, which usually says which config line is wrong."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "no output"
    errors = [line.split("] ", 2)[-1].strip() for line in lines if "ERROR:" in line or "PANIC:" in line]
    if errors:
        return "; ".join(errors[:2])
    return lines[-1].strip() if lines else "no output"
