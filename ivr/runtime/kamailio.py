"""The cluster's SIP front: Debian's Kamailio with its dispatcher module, in the background.

``up`` renders ``config/kamailio/kamailio.cfg`` and a ``dispatcher.list`` of the Asterisk
nodes into a state directory, starts ``kamailio -DD -E`` (no daemon, log to stderr, which
goes to ``kamailio.log`` there) and returns once its control socket answers and every
destination is known. The process is found by its command line (binary + this state
directory's config), never by a pid file, so ``down`` after a crash still finds it.
``destinations()`` asks the running Kamailio (``kamcmd dispatcher.list``) which Asterisks
it sends calls to now: the tests read the health probe's verdict there.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import IvrError
from ivr.runtime import processes, tcp_ports
from ivr.runtime.render import render_text

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
BINARY = "/usr/sbin/kamailio"
KAMCMD = "/usr/sbin/kamcmd"

Log = Callable[[str], None]


class KamailioError(IvrError):
    """Kamailio could not be started, asked or stopped."""

    error_id = "kamailio-error"


@dataclass(frozen=True)
class SipFront:
    """What Kamailio is told: where it listens, and the Asterisks behind it."""

    listen: str
    port: int
    asterisks: Sequence[tuple[str, int]]  # (host, SIP port) of each Asterisk, in order
    probe_interval_s: int = 2
    invite_timeout_ms: int = 2000
    children: int = 2
    advertise: str = ""  # the address written into Record-Route and Via ("": listen)


def kamailio_files(front: SipFront, template: Path, etc: Path, ctl: Path) -> dict[str, str]:
    """``kamailio.cfg`` and ``dispatcher.list`` for a Kamailio that reads them from ``etc``.

    One renderer for ``ivr cluster up`` (files in its state directory) and for the
    production container (``ivr kamailio render``, files in ``/etc/kamailio``).
    """
    values = {"listen": front.listen, "port": front.port, "advertise": front.advertise or front.listen,
              "children": front.children, "ctl_socket": str(ctl), "dispatcher_list": str(etc / "dispatcher.list"),
              "probe_interval": front.probe_interval_s, "invite_timeout_ms": front.invite_timeout_ms,
              "log_prefix": "kamailio"}
    lines = ["# set destination flags priority attrs: every Asterisk of the cluster"]
    lines += [f"1 sip:{host}:{port} 0 0 name=asterisk{n}" for n, (host, port) in enumerate(front.asterisks, start=1)]
    return {"kamailio.cfg": render_text(template.read_text(encoding="utf-8"), values, source=str(template)),
            "dispatcher.list": "\n".join(lines) + "\n"}


@dataclass(frozen=True)
class Destination:
    """One Asterisk as Kamailio's dispatcher sees it now."""

    uri: str
    active: bool  # calls go there: flags start with A (AP: active, probed); I or D: marked down
    flags: str


class LocalKamailio:
    def __init__(self, front: SipFront, state_dir: Path, template: Path, *, log: Log | None = None) -> None:
        self.front = front
        self.state_dir = state_dir.resolve()
        self.template = template
        self.conf = self.state_dir / "kamailio.cfg"
        self.ctl = self.state_dir / "kamailio_ctl.sock"
        self.log_path = self.state_dir / "kamailio.log"
        self.log: Log = log or (lambda _msg: None)

    # ------------------------------------------------------------------ queries
    def pids(self) -> list[int]:
        return processes.by_argv(os.path.basename(BINARY), str(self.conf))

    def destinations(self) -> list[Destination]:
        """Each Asterisk and whether Kamailio sends calls there (``kamcmd dispatcher.list``)."""
        out = self._kamcmd("dispatcher.list")
        found = []
        for block in out.split("DEST:")[1:]:
            uri = re.search(r"URI:\s*(\S+)", block)
            flags = re.search(r"FLAGS:\s*(\S+)", block)
            if uri and flags:
                found.append(Destination(uri.group(1), flags.group(1).startswith("A"), flags.group(1)))
        return found

    # ------------------------------------------------------------------ up / down
    def up(self) -> list[Destination]:
        if not os.access(BINARY, os.X_OK):
            raise KamailioError(f"{BINARY} is missing: Kamailio is not installed", hint="apt-get install kamailio")
        self.down()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for name, text in kamailio_files(self.front, self.template, self.state_dir, self.ctl).items():
            (self.state_dir / name).write_text(text, encoding="utf-8")
        self._check()
        tcp_ports.require_free([tcp_ports.PortNeed(self.front.port, "udp", self.front.listen, "Kamailio (UDP)"),
                                tcp_ports.PortNeed(self.front.port, "tcp", self.front.listen, "Kamailio (TCP)")])
        with open(self.log_path, "ab") as sink:
            proc = subprocess.Popen([BINARY, "-f", str(self.conf), "-DD", "-E", "-m", "64", "-M", "8"],
                                    stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True, cwd=self.state_dir)
        self.log(f"started Kamailio (pid {proc.pid}) on {self.front.listen}:{self.front.port}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise KamailioError(f"Kamailio exited during start-up (exit {proc.returncode})",
                                    hint=f"read {self.log_path}")
            try:
                found = self.destinations()
                if len(found) == len(self.front.asterisks):
                    return found
            except KamailioError:
                pass
            if time.monotonic() > deadline:
                raise KamailioError(f"Kamailio did not answer on {self.ctl} within {START_TIMEOUT_S:.0f} s",
                                    hint=f"read {self.log_path}")
            time.sleep(0.1)

    def down(self) -> None:
        pids = self.pids()  # the main process first: it stops its children itself
        for pid in pids:
            processes.stop(pid, STOP_TIMEOUT_S)
        if pids:
            self.log(f"stopped Kamailio (pid {pids[0]} and {len(pids) - 1} children)")

    # ------------------------------------------------------------------ files
    def _check(self) -> None:
        """``kamailio -c``: a configuration error is reported with its line before anything starts."""
        proc = subprocess.run([BINARY, "-c", "-f", str(self.conf)], capture_output=True, text=True, timeout=30,
                              cwd=self.state_dir)
        if proc.returncode != 0:
            problem = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln or "CRITICAL" in ln][:3]
            raise KamailioError(f"{self.conf} is refused by Kamailio: {' | '.join(problem) or proc.stderr[-500:]}",
                                hint=f"fix {self.template}")

    def _kamcmd(self, *command: str) -> str:
        if not os.access(KAMCMD, os.X_OK):
            raise KamailioError(f"{KAMCMD} is missing", hint="apt-get install kamailio")
        try:
            proc = subprocess.run([KAMCMD, "-s", f"unix:{self.ctl}", *command], capture_output=True, text=True,
                                  timeout=5)
        except subprocess.TimeoutExpired:
            raise KamailioError(f"kamcmd {' '.join(command)} timed out") from None
        if proc.returncode != 0:
            raise KamailioError(f"kamcmd {' '.join(command)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout
