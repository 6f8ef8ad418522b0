"""`ivr serve` as an operator runs it: foreground, health on HTTP, clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ivr.harness.sipp import free_port

REPO = Path(__file__).resolve().parents[2]


def start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ivr", "serve"], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **env})


def wait_health(port: int) -> dict:
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                return json.loads(resp.read())
        except OSError:
            assert time.monotonic() < deadline, "no /healthz within 15 s"
            time.sleep(0.1)


def test_serve_answers_health_and_stops_cleanly_on_sigterm():
    import socket

    agi, http = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
    proc = start({"IVR_AGI_PORT": str(agi), "IVR_HTTP_PORT": str(http)})
    try:
        health = wait_health(http)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()

    assert health["status"] == "ok" and health["live_calls"] == 0
    assert proc.returncode == 0
    assert "stopped" in out and "Traceback" not in out


def test_serve_refuses_to_start_on_an_invalid_tree_with_the_problems(tmp_path):
    import socket

    broken = tmp_path / "menus"
    broken.mkdir()
    (broken / "main.yaml").write_text("version: 1\nlanguages: [en]\nentry: a\nnodes:\n  a: {type: goto, target: b}\n")
    proc = start({"IVR_AGI_PORT": str(free_port(socket.SOCK_STREAM)),
                  "IVR_HTTP_PORT": str(free_port(socket.SOCK_STREAM)), "IVR_MENUS_DIR": str(broken)})
    out, _ = proc.communicate(timeout=30)

    assert proc.returncode == 2
    assert "the configuration is invalid, not starting" in out
    assert "refers to unknown node 'b'" in out
    assert "Traceback" not in out


def test_serve_bound_beyond_loopback_refuses_the_demo_secrets_naming_each():
    import socket

    proc = start({"IVR_AGI_PORT": str(free_port(socket.SOCK_STREAM)), "IVR_HTTP_HOST": "0.0.0.0",
                  "IVR_HTTP_PORT": str(free_port(socket.SOCK_STREAM))})
    out, _ = proc.communicate(timeout=30)

    assert proc.returncode == 2 and "Traceback" not in out
    assert "[http] host = 0.0.0.0 can be reached from other machines" in out
    for variable in ("IVR_TOKENS_SECRET", "IVR_AGENT_API_KEY", "IVR_ADMIN_KEY", "IVR_AMI_SECRET", "IVR_ARI_PASSWORD",
                     "IVR_SIP_AGENT_PASSWORD", "IVR_SMS_SENDSMS_PASSWORD"):
        assert variable in out
