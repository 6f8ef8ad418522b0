"""Whether the files an admin edits changed on disk: the poll behind "just save a file"."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

Stamp = tuple[tuple[str, float], ...]


class FileWatch:
    """Modification times of ``paths`` (a folder stands for its ``*.yaml``/``*.yml`` files)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = tuple(paths)
        self._stamp = self.stamp()

    def stamp(self) -> Stamp:
        stamps: list[tuple[str, float]] = []
        for root in self.paths:
            files = sorted(root.rglob("*.y*ml")) if root.is_dir() else [root]
            for f in files:
                try:
                    stamps.append((str(f), f.stat().st_mtime))
                except OSError:
                    stamps.append((str(f), -1.0))  # a deleted file is a change too
        return tuple(stamps)

    def changed(self) -> bool:
        """True once per change: the stamp is taken again, so the same broken files are not retried every poll."""
        now = self.stamp()
        if now == self._stamp:
            return False
        self._stamp = now
        return True
