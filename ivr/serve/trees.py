"""The live menu tree, swapped whole on reload.

A call takes the tree that is current when it starts and keeps it to the end, so a
reload never changes a call in progress. A reload that fails validation leaves the live
tree as it was and returns the problems.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.config.problems import Problem
from ivr.flow.errors import TreeInvalid
from ivr.flow.model import Tree

Loader = Callable[[], Tree]


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    version: str
    generation: int
    problems: tuple[Problem, ...] = ()


class TreeStore:
    def __init__(self, loader: Loader, watched: Sequence[Path] = ()) -> None:
        self._loader = loader
        self.watched = tuple(watched)
        self._tree = loader()  # the first load must succeed: there is nothing to fall back to
        self.generation = 1
        self._stamp = self._mtimes()

    def current(self) -> Tree:
        return self._tree

    def reload(self) -> ReloadResult:
        stamp = self._mtimes()
        try:
            tree = self._loader()
        except TreeInvalid as exc:
            self._stamp = stamp  # do not retry the same broken files on every poll
            return ReloadResult(False, self._tree.version, self.generation, exc.problems)
        self._tree = tree
        self.generation += 1
        self._stamp = stamp
        return ReloadResult(True, tree.version, self.generation)

    def changed_on_disk(self) -> bool:
        return self._mtimes() != self._stamp

    def _mtimes(self) -> tuple[tuple[str, float], ...]:
        stamps: list[tuple[str, float]] = []
        for root in self.watched:
            files = sorted(root.rglob("*.y*ml")) if root.is_dir() else [root]
            for f in files:
                try:
                    stamps.append((str(f), f.stat().st_mtime))
                except OSError:
                    stamps.append((str(f), -1.0))
        return tuple(stamps)
