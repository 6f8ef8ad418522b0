"""Finding our daemons by what they run, and stopping them for good."""

from __future__ import annotations

import subprocess
import uuid

from ivr.runtime import processes


def test_a_process_is_found_by_its_program_and_marker_and_stopped():
    marker = f"ivr-test-{uuid.uuid4().hex}"
    proc = subprocess.Popen(["sh", "-c", "exec sleep 30 & wait", marker], start_new_session=True)
    try:
        assert processes.alive(proc.pid)
        assert processes.by_argv("sh", marker) == [proc.pid]
        assert processes.by_argv("cat", marker) == []

        processes.stop(proc.pid, 5)

        assert not processes.alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def test_a_process_is_found_by_a_variable_of_its_environment():
    marker = uuid.uuid4().hex
    proc = subprocess.Popen(["sleep", "30"], env={"IVR_TEST_MARKER": marker}, start_new_session=True)
    try:
        assert processes.by_environ("IVR_TEST_MARKER", marker) == [proc.pid]
    finally:
        proc.kill()
        proc.wait()
