"""The controller a call bench measures: started by the bench itself, and proven to be the one answering.

A bench run after `./dev up` once started a second controller that could not bind its
ports and died silently, then measured the one left running ("controller CPU per call:
0.00 ms"). So a bench refuses to start while another process holds the FastAGI or HTTP
port, and waits until ``/healthz`` answers with the pid of the process it started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ivr.errors import IvrError
from ivr.runtime import tcp_ports
from ivr.settings import Settings

REPO = Path(__file__).resolve().parent.parent
LOG = Path("/tmp/ivr-bench-serve.log")


class ControllerNotStarted(IvrError):
    error_id = "bench-controller-not-started"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def require_free_ports(settings: Settings) -> None:
    """Raise :class:`ControllerNotStarted` when another process holds the controller's ports."""
    try:
        tcp_ports.require_free([tcp_ports.PortNeed(settings.agi.port, "tcp", settings.agi.host, "FastAGI"),
                                tcp_ports.PortNeed(settings.http.port, "tcp", settings.http.host, "controller HTTP")])
    except IvrError as exc:
        raise ControllerNotStarted(
            f"{exc}; this bench starts its own controller",
            hint="stop the other one first (`./dev down`, or kill the `ivr serve` holding the port)") from exc


def wait_for_own_controller(settings: Settings, serve: subprocess.Popen[bytes], ari: bool,
                            timeout_s: float = 20) -> bool:
    """True once the controller this bench started answers /healthz (its own pid) and, with ARI, is connected."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if serve.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://{settings.http.host}:{settings.http.port}/healthz",
                                        timeout=1) as resp:
                health = json.loads(resp.read())
            if health.get("pid") == serve.pid and (not ari or health.get("ari_connected") is True):
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


@contextmanager
def own_controller(settings: Settings, env: Mapping[str, str] | None = None, ari: bool = False,
                   nice: int = 0) -> Iterator[subprocess.Popen[bytes]]:
    """``ivr serve`` started for this bench (its log in :data:`LOG`), stopped on the way out;
    ``nice``: its scheduling niceness (negative: ahead of Asterisk's threads; needs root)."""
    require_free_ports(settings)
    with LOG.open("ab") as log:
        serve = subprocess.Popen([sys.executable, "-m", "ivr", "serve"], stdout=log, stderr=log, cwd=REPO,
                                 env={**os.environ, "IVR_SPEECH_MODEL": "", **(env or {})},
                                 preexec_fn=(lambda: os.nice(nice)) if nice else None)
    try:
        if not wait_for_own_controller(settings, serve, ari):
            raise ControllerNotStarted(f"the bench's controller did not start (exit {serve.poll()})",
                                       hint=f"read its log: {LOG}")
        time.sleep(1)  # AMI connected too: the number drivers are published
        yield serve
    finally:
        serve.terminate()
        try:
            serve.wait(20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
