"""One reload of everything an admin edits: menus and routing rules, all or nothing.

Both are parsed and validated first, off the event loop (a tree takes 75-90 ms to parse,
which live calls must not wait for); only when every file is valid are both swapped in,
on the loop, between two turns of any call. When anything is invalid nothing changes, and
the result lists every problem as ``path:line:col: message``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ivr.config.problems import Problem
from ivr.flow.errors import TreeInvalid
from ivr.flow.model import Tree
from ivr.live.routing import RoutingStore
from ivr.live.trees import TreeStore
from ivr.routing.rules import RoutingConfig, RoutingInvalid

log = logging.getLogger("ivr.reload")


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    version: str  # the live tree's version after the reload (the old one when refused)
    generation: int
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class _Parsed:
    tree: Tree | None
    routing: RoutingConfig | None
    problems: tuple[Problem, ...]


class Reloader:
    def __init__(self, trees: TreeStore, routing: RoutingStore | None = None) -> None:
        self.trees = trees
        self.routing = routing

    def _parse(self) -> _Parsed:
        problems: list[Problem] = []
        tree = routing = None
        try:
            tree = self.trees.load()
        except TreeInvalid as exc:
            problems += exc.problems
        if self.routing is not None:
            try:
                routing = self.routing.load()
            except RoutingInvalid as exc:
                problems += exc.problems
        return _Parsed(tree, routing, tuple(problems))

    def _apply(self, parsed: _Parsed, why: str) -> ReloadResult:
        if parsed.problems:
            live = self.trees.current()
            log.error("configuration NOT reloaded (%s): %d problem(s); menu version %s and the routing rules stay "
                      "live:\n%s", why, len(parsed.problems), live.version, "\n".join(map(str, parsed.problems)))
            return ReloadResult(False, live.version, self.trees.generation, parsed.problems)
        assert parsed.tree is not None
        self.trees.swap(parsed.tree)
        if self.routing is not None and parsed.routing is not None:
            self.routing.swap(parsed.routing)
        log.info("configuration reloaded (%s): menu version %s, generation %d", why, parsed.tree.version,
                 self.trees.generation)
        return ReloadResult(True, parsed.tree.version, self.trees.generation)

    def reload(self, why: str = "request") -> ReloadResult:
        """Parse and swap in this thread (the CLI, tests)."""
        return self._apply(self._parse(), why)

    async def reload_async(self, why: str) -> ReloadResult:
        """Parse in a worker thread, swap on the event loop: calls never wait for the parser."""
        return self._apply(await asyncio.to_thread(self._parse), why)
