"""Bind mounts of the local Asterisk root: what is mounted under it, and undoing it.

A run killed half-way leaves ``ROOT/dev`` and ``ROOT/proc`` mounted; ``up`` and ``down``
both read ``/proc/self/mountinfo`` instead of trusting their own memory.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ivr.errors import IvrError

MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal
    return field.encode().decode("unicode_escape") if "\\" in field else field


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below ``root``, deepest first (the order to unmount them in)."""
    root_s = str(root.resolve())
    found: list[Path] = []
    try:
        lines = MOUNTINFO.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            continue
        point = _unescape(fields[4])
        if point == root_s or point.startswith(root_s + "/"):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def is_mounted(point: Path) -> bool:
    return point.resolve() in {p for p in mounts_under(point)}


def bind(source: Path, target: Path, *, read_only: bool = False) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if is_mounted(target):
        return
    _run(["mount", "--bind", str(source), str(target)], f"bind {source} on {target}")
    if read_only:
        _run(["mount", "-o", "remount,bind,ro", str(target)], f"make {target} read-only")


def mount_proc(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if is_mounted(target):
        return
    _run(["mount", "-t", "proc", "proc", str(target)], f"mount proc on {target}")


def unmount_all(root: Path) -> list[Path]:
    """Unmount everything below ``root``; a busy mount is detached lazily so ``down`` never hangs."""
    done = []
    for point in mounts_under(root):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            _run(["umount", "-l", str(point)], f"unmount {point}")
        done.append(point)
    return done


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise IvrError(
            f"could not {what}: {proc.stderr.strip() or proc.stdout.strip()}",
            hint="the local Asterisk root needs root privileges (mount, chroot); run as root",
            error_id="mount-failed",
        )
