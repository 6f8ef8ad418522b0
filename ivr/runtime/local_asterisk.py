"""The local Asterisk: a real Asterisk 22 in a Debian sid root, on a machine without Docker.

``up`` builds (or unpacks) the root, installs the project's configuration, binds ``/dev``,
``/proc`` and the project's sounds, and starts ``chroot ROOT /usr/sbin/asterisk -f`` in the
background. It returns only once ``core waitfullybooted`` answers. Every step reads the
real state (processes whose root is ROOT, /proc/self/mountinfo) rather than trusting a pid
file, so a run killed half-way is repaired by the next ``up`` or ``down``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import IvrError
from ivr.runtime import mounts, rootfs, tcp_ports
from ivr.runtime.render import render_config
from ivr.settings import Settings

BOOT_TIMEOUT_S = 60.0
PORT_RELEASE_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 15.0
SOUNDS_MOUNT = "var/lib/ivr/sounds"  # inside the root; prompts are played by absolute path
LOG_DIR = "var/log/asterisk"

Log = Callable[[str], None]


@dataclass(frozen=True)
class Status:
    running: bool
    pids: tuple[int, ...]
    version: str
    root: Path
    logs: tuple[Path, ...]

    def describe(self) -> str:
        if not self.running:
            return f"stopped (root {self.root})"
        return f"running: {self.version} (pid {', '.join(map(str, self.pids))}, root {self.root})"


class LocalAsterisk:
    def __init__(self, settings: Settings, log: Log | None = None) -> None:
        self.settings = settings
        self.root = settings.asterisk.root_path()
        self.log: Log = log or (lambda _msg: None)

    # ----------------------------------------------------------------- queries
    def pids(self) -> tuple[int, ...]:
        """Processes running inside the root (by their root directory, not a pid file)."""
        root = str(self.root.resolve())
        found = []
        for pid_dir in Path("/proc").iterdir():
            if not pid_dir.name.isdigit():
                continue
            try:
                if os.readlink(pid_dir / "root") == root:
                    found.append(int(pid_dir.name))
            except OSError:
                continue
        return tuple(sorted(found))

    def asterisk_pids(self) -> tuple[int, ...]:
        out = []
        for pid in self.pids():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "asterisk":
                    out.append(pid)
            except OSError:
                continue
        return tuple(out)

    def log_paths(self) -> tuple[Path, ...]:
        return (self.root / LOG_DIR / "messages.log", self.root / LOG_DIR / "console.log")

    def status(self) -> Status:
        pids = self.asterisk_pids()
        version = ""
        if pids:
            proc = self._rx("core show version", timeout=5, check=False)
            version = proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout.strip() else ""
        return Status(bool(pids) and bool(version), pids, version, self.root, self.log_paths())

    def cli(self, command: str, timeout: float = 30) -> str:
        if not self.asterisk_pids():
            raise IvrError("Asterisk is not running", hint="start it with `ivr asterisk up`",
                           error_id="asterisk-stopped")
        return self._rx(command, timeout=timeout).stdout

    # ----------------------------------------------------------------- up / down
    def up(self) -> Status:
        if os.geteuid() != 0:
            raise IvrError("the local Asterisk needs root (debootstrap, mount, chroot)",
                           hint="run `ivr asterisk up` as root", error_id="not-root")
        if self.asterisk_pids():
            status = self.status()
            if status.running:
                self.log(f"already {status.describe()}")
                self._install_config()
                self._rx("core reload", timeout=30, check=False)
                return status
            self.log("an Asterisk in the root does not answer: restarting it")
            self._stop_processes()
        spec = rootfs.RootSpec(self.settings.asterisk.suite, self._mirror())
        how = rootfs.ensure_root(self.root, spec, self.settings.asterisk.cache_path(), self.log)
        self.log(f"root {self.root}: {how}")
        self._stop_processes()  # strays from a killed run (asterisk -r, old daemons)
        self._prepare_mounts()
        self._install_config()
        tcp_ports.wait_free(self._port_needs(), PORT_RELEASE_TIMEOUT_S)  # a killed Asterisk's sockets
        tcp_ports.require_free(self._port_needs())
        self._start()
        self._wait_booted()
        status = self.status()
        self.log(status.describe())
        for path in status.logs:
            self.log(f"log: {path}")
        return status

    def down(self) -> None:
        if self.asterisk_pids():
            self._rx("core stop now", timeout=STOP_TIMEOUT_S, check=False)
        self._stop_processes()
        if self.root.exists():
            unmounted = mounts.unmount_all(self.root)
            if unmounted:
                self.log(f"unmounted {', '.join(map(str, unmounted))}")
        if not tcp_ports.wait_free(self._port_needs(), PORT_RELEASE_TIMEOUT_S):
            self.log("stopped, but a port is still held: " + ", ".join(
                f"{n.port}/{n.proto}" for n in self._port_needs() if not tcp_ports.is_free(n)))
            return
        self.log("stopped")

    # ----------------------------------------------------------------- steps
    def _mirror(self) -> str:
        return self.settings.asterisk.mirror or rootfs.host_debian_mirror()

    def _port_needs(self) -> list[tcp_ports.PortNeed]:
        s = self.settings
        return [
            tcp_ports.PortNeed(s.sip.port, "udp", s.sip.bind, "PJSIP (UDP)"),
            tcp_ports.PortNeed(s.sip.port, "tcp", s.sip.bind, "PJSIP (TCP)"),
            tcp_ports.PortNeed(s.ami.port, "tcp", s.ami.bind, "AMI"),
            tcp_ports.PortNeed(s.ari.port, "tcp", s.ari.bind, "HTTP/ARI"),
        ]

    def _prepare_mounts(self) -> None:
        mounts.bind(Path("/dev"), self.root / "dev")
        mounts.mount_proc(self.root / "proc")
        sounds = self.settings.home / "sounds"
        sounds.mkdir(exist_ok=True)
        mounts.bind(sounds, self.root / SOUNDS_MOUNT, read_only=True)
        # Without a hosts entry for this machine's name every call waits on DNS.
        hostname = socket.gethostname()
        (self.root / "etc/hosts").write_text(
            f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        (self.root / "etc/resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        (self.root / "etc/hostname").write_text(hostname + "\n")

    def _install_config(self) -> None:
        render_config(self.settings, self.root / "etc/asterisk")
        (self.root / LOG_DIR).mkdir(parents=True, exist_ok=True)

    def _start(self) -> None:
        console = self.root / LOG_DIR / "console.log"
        with open(console, "ab") as out:
            # -f: foreground (no fork, so the pid is ours); never -c: with stdin on
            # /dev/null the console spins a whole core.
            proc = subprocess.Popen(
                ["chroot", str(self.root), "/usr/sbin/asterisk", "-f"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log(f"started Asterisk (pid {proc.pid})")
        self._child = proc

    def _wait_booted(self) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            if getattr(self, "_child", None) is not None and self._child.poll() is not None:
                raise IvrError(
                    f"Asterisk exited during start-up (exit {self._child.returncode})",
                    hint=f"read {self.root / LOG_DIR / 'console.log'}", error_id="asterisk-died")
            proc = self._rx("core waitfullybooted", timeout=10, check=False)
            if proc.returncode == 0 and "fully booted" in proc.stdout.lower():
                return
            time.sleep(0.2)
        raise IvrError(f"Asterisk did not finish booting within {BOOT_TIMEOUT_S:.0f} s",
                       hint=f"read {self.root / LOG_DIR / 'console.log'}", error_id="asterisk-boot-timeout")

    def _stop_processes(self) -> None:
        """Signal every process in the root until none is left, then wait for their real end.

        A process killed by a signal lingers as a zombie until its parent reaps it; if that
        parent is this process (``up`` started it), reap it here, so ``down`` returns only
        when the Asterisk process is gone, not merely dying.
        """
        deadline = time.monotonic() + STOP_TIMEOUT_S
        sig = signal.SIGTERM
        signalled: set[int] = set()
        while True:
            pids = self.pids()
            if not pids:
                self._reap(signalled, deadline + 10)
                return
            signalled.update(pids)
            if time.monotonic() > deadline:
                sig = signal.SIGKILL
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
            if sig is signal.SIGKILL and time.monotonic() > deadline + 10:
                raise IvrError(f"processes {pids} in {self.root} survive SIGKILL", error_id="unkillable")

    def _reap(self, pids: set[int], deadline: float) -> None:
        child = getattr(self, "_child", None)
        if child is not None:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        while pids and time.monotonic() < deadline:
            for pid in pids:
                _reap_if_ours(pid)
            pids = {pid for pid in pids if _alive_or_zombie(pid) and not _is_zombie_of_another(pid)}
            if pids:
                time.sleep(0.05)

    def _rx(self, command: str, *, timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(["chroot", str(self.root), "/usr/sbin/asterisk", "-rx", command],
                                  capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            proc = subprocess.CompletedProcess([], 124, "", f"timed out after {timeout} s")
        if check and proc.returncode != 0:
            raise IvrError(f"asterisk -rx {command!r} failed: {proc.stderr.strip() or proc.stdout.strip()}",
                           error_id="asterisk-cli-failed")
        return proc


def _alive_or_zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _is_zombie_of_another(pid: int) -> bool:
    """A zombie whose parent is not this process: only that parent can reap it, so do not wait."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] == "Z" and int(fields[1]) != os.getpid()


def _reap_if_ours(pid: int) -> None:
    """Collect a child of this process that has ended (an Asterisk an earlier ``up`` here started)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child, or already collected
