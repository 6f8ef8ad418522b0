"""The live menu tree, swapped whole on reload.

A call takes the tree that is current when it starts and keeps it to the end, so a
reload never changes a call in progress. :meth:`TreeStore.load` parses without touching
the live tree (safe in a worker thread); :meth:`TreeStore.swap` installs a parsed tree.
"""

from __future__ import annotations

from collections.abc import Callable

from ivr.flow.model import Tree

Loader = Callable[[], Tree]


class TreeStore:
    def __init__(self, loader: Loader) -> None:
        self._loader = loader
        self._tree = loader()  # the first load must succeed: there is nothing to fall back to
        self.generation = 1

    def current(self) -> Tree:
        return self._tree

    def load(self) -> Tree:
        """A freshly parsed tree (:class:`~ivr.flow.errors.TreeInvalid` with every problem); nothing swapped."""
        return self._loader()

    def swap(self, tree: Tree) -> None:
        self._tree = tree
        self.generation += 1
