"""Background processes found by what they run, not by pid files, and stopped for good.

A pid file goes stale when a run is killed half-way; the command line does not. Each
daemon the runtime starts carries a marker unique to this checkout (its config file's
path) in its arguments, so ``by_argv`` finds exactly ours, from any shell, after any crash.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path


def by_argv(name: str, marker: str) -> list[int]:
    """Pids of the processes whose program is called ``name`` and whose arguments hold ``marker``."""
    wanted = marker.encode()
    return [pid for pid, argv in _each("cmdline")
            if len(argv) > 1 and wanted in argv[1:] and os.path.basename(argv[0].decode(errors="replace")) == name]


def by_environ(name: str, value: str) -> list[int]:
    """Pids of the live processes started with ``name=value`` in their environment (root reads any)."""
    wanted = f"{name}={value}".encode()
    return [pid for pid, environ in _each("environ") if wanted in environ and alive(pid)]


def _each(what: str) -> Iterator[tuple[int, list[bytes]]]:
    """(pid, NUL-separated fields of /proc/pid/<what>) for every process we may read."""
    for pid_dir in sorted(Path("/proc").iterdir(), key=lambda p: (len(p.name), p.name)):
        if not pid_dir.name.isdigit():
            continue
        try:
            yield int(pid_dir.name), (pid_dir / what).read_bytes().split(b"\0")
        except OSError:
            continue


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop(pid: int, timeout_s: float, *, poll_s: float = 0.05) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns once the process has ended."""
    deadline = time.monotonic() + timeout_s
    sig = signal.SIGTERM
    while alive(pid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        _reap(pid)
        if time.monotonic() > deadline:
            sig = signal.SIGKILL
        time.sleep(poll_s)
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect our own child so it leaves no zombie; another's is its parent's to collect."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
