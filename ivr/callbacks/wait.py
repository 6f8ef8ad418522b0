"""How long a new caller would wait, from what ``app_queue`` reports.

The voice side polls ``QueueStatus`` (:mod:`ivr.voice.queue_monitor`) and keeps one
:class:`QueueWait` per queue. A session reads the snapshot when it starts (no I/O in the
engine), as the template variables ``queue`` (the default queue) and ``queues.<name>``,
so a menu can say the wait and branch on it: ``when: queue.estimated_wait > 120``.

The estimate is the one ``app_queue`` itself cannot give for a caller who has not joined
yet: the callers ahead, shared among the agents logged in, each taking the queue's
average talk time (app_queue's own running average; a default before the first call).
A queue with nobody logged in has no honest estimate: it counts as long (``agents`` 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ivr.callbacks.policy import CallbackPolicy

DEFAULT_HANDLE_S = 180.0  # before the queue has answered anyone: a typical contact-centre handle time
NO_AGENTS_WAIT_S = 3600.0


@dataclass(frozen=True)
class QueueWait:
    queue: str
    waiting: int = 0  # entries in the queue now, callback places included
    callbacks: int = 0  # of them, callback places
    agents: int = 0  # members logged in and not paused
    free: int = 0  # of them, not on a call
    holdtime_s: float = 0.0  # app_queue's average wait of answered callers
    talktime_s: float = 0.0  # app_queue's average talk time
    longest_s: float = 0.0  # the longest current wait

    def estimated_wait_s(self, position: int | None = None) -> float:
        """The wait of the caller at ``position`` (default: one who joins now, at the end)."""
        position = self.waiting + 1 if position is None else position
        if self.free >= position:
            return 0.0
        if self.agents <= 0:
            return NO_AGENTS_WAIT_S
        handle = self.talktime_s if self.talktime_s > 0 else DEFAULT_HANDLE_S
        rounds = math.ceil((position - self.free) / self.agents)
        return max(float(rounds) * handle, self.holdtime_s if self.waiting else 0.0)


def template_facts(wait: QueueWait | None, queue: str, policy: CallbackPolicy) -> Mapping[str, Any]:
    """The ``queue`` template variable: place, wait and whether to offer a callback."""
    if wait is None:
        return MappingProxyType({"name": queue, "known": False, "position": 1, "waiting": 0, "agents": 0,
                                 "estimated_wait": 0, "estimated_minutes": 0, "offer_callback": False})
    seconds = wait.estimated_wait_s()
    rules = policy.for_queue(queue)
    return MappingProxyType({
        "name": queue, "known": True, "position": wait.waiting + 1, "waiting": wait.waiting, "agents": wait.agents,
        "estimated_wait": round(seconds), "estimated_minutes": max(1, math.ceil(seconds / 60)) if seconds else 0,
        "offer_callback": rules.offers_at(seconds) and wait.callbacks < rules.max_waiting})


class QueueFacts:
    """What a session start puts in the context: the default queue's facts and every queue's."""

    def __init__(self, snapshot: Callable[[str], Mapping[str, QueueWait]], policy: Callable[[], CallbackPolicy],
                 default_queue: Callable[[], str]) -> None:
        # snapshot(node): the queues of the Asterisk named ``node`` (its system name; "": this
        # controller's own), since each Asterisk of a cluster has queues of its own
        self._snapshot = snapshot
        self._policy = policy
        self._default = default_queue

    def __call__(self, node: str = "") -> tuple[Mapping[str, Any], Mapping[str, Mapping[str, Any]]]:
        snapshot, policy, default = self._snapshot(node), self._policy(), self._default()
        every = {name: template_facts(wait, name, policy) for name, wait in snapshot.items()}
        return every.get(default) or template_facts(None, default, policy), MappingProxyType(every)


def fixed_facts(seconds: float, queues: Mapping[str, int] | None = None, default_queue: str = "support",
                policy: CallbackPolicy | None = None) -> QueueFacts:
    """Facts that say ``seconds`` for every queue: ``ivr simulate --wait`` shows the long-wait branches."""
    policy = policy or CallbackPolicy()
    names = set(queues or {}) | {default_queue}
    # one agent, the callers ahead each taking a default handle time, adds up to `seconds`
    ahead = max(0, math.ceil(seconds / DEFAULT_HANDLE_S) - 1)
    snapshot = {name: QueueWait(name, waiting=ahead, agents=1, talktime_s=seconds / (ahead + 1) if seconds else 0)
                for name in names}
    if seconds <= 0:
        snapshot = {name: QueueWait(name, agents=1, free=1) for name in names}
    return QueueFacts(lambda _node: snapshot, lambda: policy, lambda: default_queue)
