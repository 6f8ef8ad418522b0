"""The journey spool on disk: what a controller killed during a store outage was holding.

:class:`~ivr.journey.spool.SpooledJourney` keeps the writes the store could not take in
memory, in order. This file keeps the same writes on the local disk as they are spooled,
one JSON line each, and a ``done`` line for each one the store took, so the next
controller to start on this machine stores what a killed one left, in the order it was
spooled. Each controller writes its own file (``journey-spool-<host>-<pid>.jsonl``) and holds an
exclusive ``flock`` on it while it runs: a file nobody holds belongs to a controller that
is gone, and a starting controller takes it over (copies what was not done into its own
file, then deletes it).

What it guarantees: a write the spool accepted survives the controller being killed
(``kill -9``, the OOM killer), because it is in the kernel's page cache before the call
goes on. Not a machine crash in the second after it (there is no ``fsync`` per write: an
outage must not make every call wait on the disk). A disk too full for the spool's own
line (the same full disk that stopped SQLite) leaves that write in memory only, and the
log says so. A write the store may have taken just before the kill (its ``done`` line not
yet written) is stored again: twice is better than never.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

PREFIX = "journey-spool-"
SUFFIX = ".jsonl"


@dataclass(frozen=True)
class Leftover:
    """A write a gone controller spooled and the store never confirmed, as it was logged, and
    its number in this controller's own file (None: it could not be copied there)."""

    record: dict[str, Any]
    number: int | None


class SpoolFile:
    """This controller's spool log in ``directory``; created on the first spooled write."""

    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self.directory = directory
        # The host name too: controllers in containers sharing a volume may have the same pid.
        self.path = directory / f"{PREFIX}{_safe(socket.gethostname())}-{pid or os.getpid()}{SUFFIX}"
        self._out: IO[str] | None = None
        self._seq = 0  # the number of the last record written
        self._live = 0  # records written and not yet done
        self._broken = False

    # -- at start: what gone controllers left ----------------------------------------------------
    def take_over(self) -> list[Leftover]:
        """The not-done writes of every file here that no running controller holds, oldest file
        first; each such file is deleted once its writes are in this controller's own file."""
        leftovers: list[Leftover] = []
        for path in sorted(self.directory.glob(f"{PREFIX}*{SUFFIX}"), key=_mtime):
            if path == self.path:
                continue
            with _locked_or_none(path) as handle:
                if handle is None:  # its controller runs
                    continue
                records = pending_records(handle.read())
                leftovers.extend(Leftover(record, self.add(record)) for record in records)
                if self._broken and records:  # not copied: leave it for the next start
                    log.error("journey spool: %d writes left in %s could not be copied; kept there", len(records), path)
                    continue
                path.unlink(missing_ok=True)
                if records:
                    log.warning("journey spool: took over %d writes a stopped controller left in %s",
                                len(records), path.name)
        return leftovers

    # -- while running ---------------------------------------------------------------------------
    def add(self, record: dict[str, Any]) -> int | None:
        """Log one spooled write; its number for :meth:`done`, or None when the disk refused it."""
        number = self._seq + 1
        try:
            out = self._open()
            out.write(json.dumps({"n": number, **record}, separators=(",", ":"), default=str) + "\n")
            out.flush()
        except OSError as exc:
            if not self._broken:
                log.error("journey spool: cannot write %s (%s): spooled writes are kept in memory only "
                          "until it can", self.path, exc)
            self._broken = True
            return None
        self._seq, self._live, self._broken = number, self._live + 1, False
        return number

    def done(self, number: int | None) -> None:
        """The store took write ``number``: a restart must not store it again."""
        if number is None or self._out is None:
            return
        try:
            self._out.write(f'{{"done":{number}}}\n')
            self._out.flush()
        except OSError as exc:
            log.warning("journey spool: cannot mark write %d done in %s (%s): a restart may store it twice",
                        number, self.path, exc)
        self._live -= 1
        if self._live <= 0:
            self.close(delete=True)

    def close(self, delete: bool = False) -> None:
        """Close the file; ``delete`` when nothing in it is still waiting (never otherwise)."""
        if self._out is not None:
            self._out.close()
            self._out = None
        self._live = 0
        if delete:
            self.path.unlink(missing_ok=True)

    def _open(self) -> IO[str]:
        if self._out is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            out = self.path.open("a", encoding="utf-8")
            try:
                fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                out.close()
                raise
            self._out = out
        return self._out


def pending_records(text: str) -> list[dict[str, Any]]:
    """The records of a spool log that have no ``done`` line, in order; a torn last line is skipped."""
    records: dict[int, dict[str, Any]] = {}
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue  # the line a killed process was writing
        if not isinstance(item, dict):
            continue
        if "done" in item:
            records.pop(item["done"], None)
        elif isinstance(item.get("n"), int):
            number = item.pop("n")
            records[number] = item
    return [records[n] for n in sorted(records)]


@contextmanager
def _locked_or_none(path: Path) -> Iterator[IO[str] | None]:
    """``path`` open and locked without waiting; None when another process holds it (or it is gone)."""
    try:
        handle = path.open("r", encoding="utf-8", errors="replace")
    except OSError:
        yield None
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield None
            return
        yield handle


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in name)[:64] or "host"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
