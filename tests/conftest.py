"""Shared fixtures: settings, the real local Asterisk, a controller process, and place_call.

Tests marked ``asterisk`` run against the real Asterisk root. Without root privileges they
are skipped on a developer's machine, but in CI (CI=true) a missing Asterisk is a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from ivr.crm.seed import seed_demo
from ivr.crm.sqlite_directory import SqliteDirectory
from ivr.harness.calls import CallRequest, place_call_sync
from ivr.harness.record import CallRecord
from ivr.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", f"/tmp/ivr-hypothesis-{os.getuid()}")
# Hypothesis keeps no example database in the checkout: every run is the same run (seeded in CI by derandomize).
hypothesis_settings.register_profile("ivr", database=None, derandomize=bool(os.environ.get("CI")))
hypothesis_settings.load_profile("ivr")
#: Where the tests' stores live instead of the checkout's var/ (tests never write into the source tree).
STATE_ENV = {"IVR_CRM_SQLITE_PATH": "crm.sqlite", "IVR_JOURNEY_SQLITE_PATH": "journey.sqlite",
             "IVR_JOURNEY_SPOOL_DIR": "journey-spool"}
SPEECH_ENV = "IVR_SPEECH_MODEL"
CALLBACKS_ENV = "IVR_ROUTING_CALLBACKS"


@pytest.fixture(scope="session", autouse=True)
def state_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point the CRM and journey files of every `ivr` command, controller and CLI call the
    tests make at a folder of this session's own; a value set by the caller wins."""
    state = tmp_path_factory.mktemp("ivr-state")
    saved = {name: os.environ.get(name) for name in STATE_ENV}
    for name, file in STATE_ENV.items():
        os.environ.setdefault(name, str(state / file))
    # Callers are not offered callbacks (the demo offers one whenever no agent is logged in)
    # unless a callback test gives its own policy.
    never = state / "callbacks-off.yaml"
    never.write_text("defaults:\n  offer_after_s: -1\n")
    saved[CALLBACKS_ENV] = os.environ.get(CALLBACKS_ENV)
    os.environ.setdefault(CALLBACKS_ENV, str(never))
    # Controllers start no recogniser (a 580 MB model) unless a speech test asks for one.
    saved[SPEECH_ENV] = os.environ.get(SPEECH_ENV)
    os.environ.setdefault(SPEECH_ENV, "")
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def settings(state_outside_the_checkout: None) -> Settings:
    return load_settings()


@pytest.fixture
def demo_directory(tmp_path: Path) -> Iterator[SqliteDirectory]:
    """The embedded CRM seeded with the demo customers, in this test's own file."""
    seed_demo(tmp_path / "crm.db", pin_iterations=1000)
    directory = SqliteDirectory(tmp_path / "crm.db")
    yield directory
    directory.close()


@pytest.fixture(scope="session")
def asterisk(settings: Settings) -> Iterator[Settings]:
    """A running local Asterisk (brought up once per session; `up` is idempotent)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the Asterisk tests need root in CI")
        pytest.skip("the local Asterisk root needs root privileges")
    from ivr.runtime.local_asterisk import LocalAsterisk

    LocalAsterisk(settings).up()
    yield settings


@dataclass
class ControllerProcess:
    """``ivr serve`` as a real process, so a test can kill it like a crash would."""

    settings: Settings
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self) -> None:
        from ivr.runtime.tcp_ports import PortNeed, require_free

        # A stray controller would answer our health checks and take our calls.
        require_free([PortNeed(self.settings.agi.port, "tcp", self.settings.agi.host, "FastAGI"),
                      PortNeed(self.settings.http.port, "tcp", self.settings.http.host, "controller HTTP")])
        self.log_path = Path(os.environ.get("IVR_TEST_LOG_DIR", "/tmp")) / f"ivr-serve-{os.getpid()}-{id(self)}.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "ivr", "serve"], stdout=log, stderr=log,
                                     env={**os.environ, **self.env}, cwd=REPO)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ivr serve exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                # Healthy, and the Stasis application registered: an ARI call before that would fall back.
                if self.health().get("ari_connected") in (True, None):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("ivr serve did not become healthy (and its ARI application connected) within 15 s")

    @property
    def health_url(self) -> str:
        return f"http://{self.settings.http.host}:{self.settings.http.port}/healthz"

    def health(self) -> dict[str, object]:
        import json

        with urllib.request.urlopen(self.health_url, timeout=2) as resp:
            return dict(json.loads(resp.read()))

    def kill(self) -> None:
        """SIGKILL: the controller dies the way a crash or the OOM killer would kill it."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None


@pytest.fixture
def controller(asterisk: Settings) -> Iterator[ControllerProcess]:
    proc = ControllerProcess(asterisk)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def start_controller(asterisk: Settings) -> Iterator[Callable[..., ControllerProcess]]:
    """``start_controller(IVR_MENUS_DIR=...)``: a controller with its own environment."""
    started: list[ControllerProcess] = []

    def _start(**env: str) -> ControllerProcess:
        proc = ControllerProcess(asterisk, env=env)
        proc.start()
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.stop()


@pytest.fixture
def place_call(asterisk: Settings) -> Callable[..., CallRecord]:
    """``place_call(keys="1", dnis="100", transport="sipp", ...)`` -> the call's record."""

    def _place(**kwargs: object) -> CallRecord:
        return place_call_sync(asterisk, CallRequest(**kwargs))  # type: ignore[arg-type]

    return _place
