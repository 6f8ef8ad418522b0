"""Build, cache and repair the Debian sid root that holds Asterisk.

Asterisk is not in Debian stable but sid has Asterisk 22, so the local runtime is a
``debootstrap --variant=minbase`` root of sid. Building it takes about a minute; the
finished root is cached as a tarball keyed by what went into it, so the next ``up`` on
the machine takes seconds. A root is only used once its completion marker is written:
a half-built root from a killed run is thrown away and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import IvrError
from ivr.runtime import mounts

PACKAGES = (
    "asterisk",
    "asterisk-modules",
    "asterisk-core-sounds-en-gsm",
    "asterisk-core-sounds-ru-gsm",
    "asterisk-moh-opsound-gsm",
)
MARKER = ".ivr-root-complete"
ROOT_LAYOUT_VERSION = "1"

Log = Callable[[str], None]


@dataclass(frozen=True)
class RootSpec:
    suite: str
    mirror: str
    packages: tuple[str, ...] = PACKAGES

    @property
    def digest(self) -> str:
        # The mirror is left out: the same suite and packages from another mirror are the same root.
        text = "|".join((ROOT_LAYOUT_VERSION, self.suite, *sorted(self.packages)))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def host_debian_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's own apt sources name (never a hard-coded host)."""
    candidates: list[str] = []
    files = [sources_dir / "sources.list"] + sorted((sources_dir / "sources.list.d").glob("*"))
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            candidates += re.findall(r"^URIs:\s*(\S+)", text, flags=re.MULTILINE)
        else:
            candidates += re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, flags=re.MULTILINE)
    for uri in candidates:
        if uri.rstrip("/").endswith("/debian") and "security" not in uri:
            return uri.rstrip("/")
    raise IvrError(
        "no Debian mirror found in this machine's apt sources (/etc/apt/sources.list*)",
        hint="set [asterisk] mirror in config/ivr.toml or IVR_ASTERISK_MIRROR to a Debian mirror URL",
        error_id="no-debian-mirror",
    )


def is_complete(root: Path, spec: RootSpec) -> bool:
    marker = root / MARKER
    return marker.exists() and marker.read_text().strip() == spec.digest


def cache_file(cache_dir: Path, spec: RootSpec) -> Path:
    return cache_dir / f"asterisk-root-{spec.suite}-{spec.digest}.tar.zst"


def ensure_root(root: Path, spec: RootSpec, cache_dir: Path, log: Log) -> str:
    """Make ``root`` a complete Asterisk root; return how ("ready", "cache" or "debootstrap")."""
    if is_complete(root, spec):
        return "ready"
    if root.exists():
        log(f"{root} is incomplete or from another build: removing it")
        remove_root(root)
    tarball = cache_file(cache_dir, spec)
    if tarball.exists():
        log(f"unpacking cached root {tarball}")
        try:
            _extract(tarball, root)
            if is_complete(root, spec):
                return "cache"
        except IvrError as exc:
            log(f"cached root unusable ({exc}); rebuilding")
        remove_root(root)
        tarball.unlink(missing_ok=True)
    _debootstrap(root, spec, log)
    _finish_root(root, spec)
    _store_cache(root, tarball, log)
    return "debootstrap"


def remove_root(root: Path) -> None:
    mounts.unmount_all(root)
    if mounts.mounts_under(root):
        raise IvrError(f"{root} still has mounts; refusing to delete it", error_id="root-busy",
                       hint=f"check `grep {root} /proc/self/mountinfo` and unmount by hand")
    shutil.rmtree(root, ignore_errors=True)


def _debootstrap(root: Path, spec: RootSpec, log: Log) -> None:
    if shutil.which("debootstrap") is None:
        raise IvrError("debootstrap is not installed", error_id="no-debootstrap",
                       hint="apt-get install debootstrap (as root)")
    if os.geteuid() != 0:
        raise IvrError("building the Asterisk root needs root (debootstrap, mount, chroot)",
                       error_id="not-root", hint="run `ivr asterisk up` as root")
    building = root.with_name(root.name + ".building")
    if building.exists():
        remove_root(building)
    building.parent.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap {spec.suite} from {spec.mirror} into {building} (about a minute)")
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(spec.packages)}",
           spec.suite, str(building), spec.mirror]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
        step = _failed_step(proc.stdout + proc.stderr)
        remove_root(building)
        raise IvrError(
            f"debootstrap failed while {step} (exit {proc.returncode}):\n{tail}",
            hint="check the network and the mirror ([asterisk] mirror / IVR_ASTERISK_MIRROR); if sid "
            "is temporarily broken (a package not installable), retry later: nothing half-built is kept",
            error_id="debootstrap-failed",
        )
    building.rename(root)


def _failed_step(output: str) -> str:
    steps = [line[3:].strip() for line in output.splitlines() if line.startswith("I: ")]
    errors = [line for line in output.splitlines() if line.startswith("E: ") or "W: Failure" in line]
    where = steps[-1].rstrip(".") if steps else "starting"
    return f"{where.lower()} ({errors[-1]})" if errors else where.lower()


def _finish_root(root: Path, spec: RootSpec) -> None:
    sounds = root / "usr/share/asterisk/sounds"
    # Debian ships Russian as ru_RU_f_IvrvoiceRU; Asterisk looks for language "ru" in sounds/ru.
    ru = sounds / "ru"
    if not ru.exists():
        for candidate in sorted(sounds.glob("ru_RU*")):
            ru.symlink_to(candidate.name)
            break
    # apt caches are not needed at run time and only bloat the cached tarball
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(spec.digest + "\n")


def _extract(tarball: Path, root: Path) -> None:
    root.mkdir(parents=True)
    proc = subprocess.run(["tar", "--zstd", "-xpf", str(tarball), "-C", str(root)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise IvrError(f"cannot unpack {tarball}: {proc.stderr.strip()}", error_id="cache-corrupt")


def _store_cache(root: Path, tarball: Path, log: Log) -> None:
    try:
        tarball.parent.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial")
        proc = subprocess.run(
            ["tar", "--zstd", "-cpf", str(partial), "--one-file-system", "-C", str(root), "."],
            capture_output=True, text=True)
        if proc.returncode != 0:
            raise OSError(proc.stderr.strip())
        partial.rename(tarball)
        log(f"cached the root as {tarball}")
    except OSError as exc:
        # A cache is an optimisation: failing to write it must not fail `up`.
        log(f"warning: could not cache the root ({exc})")
