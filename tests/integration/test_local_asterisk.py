"""`ivr asterisk up/down`: idempotent, leaves nothing behind, repairs what a killed run left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from ivr.runtime import mounts, rootfs
from ivr.runtime.local_asterisk import LocalAsterisk

pytestmark = pytest.mark.asterisk


def ivr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr", *args], capture_output=True, text=True, timeout=300)


def test_up_twice_gives_one_asterisk(asterisk):
    local = LocalAsterisk(asterisk)
    first = local.up()
    second = local.up()

    assert first.running and second.running
    assert len(local.asterisk_pids()) == 1
    assert first.pids == second.pids


def test_status_reports_running_with_the_version(asterisk):
    result = ivr("asterisk", "status")

    assert result.returncode == 0
    assert result.stdout.startswith("running: Asterisk 22.")


def test_cli_runs_an_asterisk_command(asterisk):
    result = ivr("asterisk", "cli", "queue show support")

    assert result.returncode == 0
    assert "support has" in result.stdout


def test_down_leaves_no_process_and_no_mount_and_up_brings_it_back(asterisk):
    local = LocalAsterisk(asterisk)

    down = ivr("asterisk", "down")
    assert down.returncode == 0, down.stderr
    assert local.pids() == ()
    assert mounts.mounts_under(local.root) == []
    assert ivr("asterisk", "status").returncode == 3
    assert ivr("asterisk", "down").returncode == 0  # down twice is fine too

    up = ivr("asterisk", "up")
    assert up.returncode == 0, up.stderr
    assert "log: " in up.stderr
    assert local.status().running


def test_up_after_a_killed_asterisk_repairs_the_stale_mounts(asterisk):
    local = LocalAsterisk(asterisk)
    local.up()
    for pid in local.pids():
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while local.pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert mounts.mounts_under(local.root), "the killed run should have left its mounts"

    status = local.up()

    assert status.running
    points = mounts.mounts_under(local.root)
    assert len(points) == len(set(points)) == 3  # /dev, /proc, sounds: repaired, not stacked


def test_a_half_built_root_is_replaced_by_a_complete_one(asterisk, tmp_path):
    settings = replace(asterisk, asterisk=replace(asterisk.asterisk, root=str(tmp_path / "root")))
    spec = rootfs.RootSpec(settings.asterisk.suite, rootfs.host_debian_mirror())
    half = tmp_path / "root"
    (half / "etc").mkdir(parents=True)  # as a killed debootstrap leaves it: no completion marker

    how = rootfs.ensure_root(half, spec, settings.asterisk.cache_path(), log=lambda _m: None)

    assert how in ("cache", "debootstrap")
    assert rootfs.is_complete(half, spec)
    assert (half / "usr/sbin/asterisk").exists()
    rootfs.remove_root(half)


def test_port_in_use_names_the_port_and_the_process(asterisk):
    local = LocalAsterisk(asterisk)
    local.down()
    squatter = ("import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                f"s.bind(('127.0.0.1', {asterisk.ami.port})); s.listen(); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", squatter])
    try:
        time.sleep(0.5)
        result = ivr("asterisk", "up")
        assert result.returncode == 2
        assert f"port {asterisk.ami.port}/tcp on 127.0.0.1 (AMI) is already in use by pid {holder.pid}" \
            in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        holder.kill()
        holder.wait()
        local.up()


def test_unreachable_mirror_fails_with_the_step_and_what_to_do(tmp_path):
    import os

    if os.geteuid() != 0:
        pytest.skip("debootstrap needs root")
    spec = rootfs.RootSpec("sid", "http://127.0.0.1:9/debian")

    with pytest.raises(rootfs.IvrError) as err:
        rootfs.ensure_root(tmp_path / "root", spec, tmp_path / "cache", log=lambda _m: None)

    assert err.value.error_id == "debootstrap-failed"
    assert err.value.message.startswith("debootstrap failed while retrieving")
    assert "check the network and the mirror" in err.value.hint
    assert not (tmp_path / "root").exists() and not (tmp_path / "root.building").exists()
