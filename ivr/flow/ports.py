"""What a channel needs to run sessions: the tree that is live when a session starts."""

from __future__ import annotations

from typing import Protocol

from ivr.flow.model import Tree


class CurrentTree(Protocol):
    def current(self) -> Tree:
        """The live tree; a session keeps the one it started with to its end."""
        ...
