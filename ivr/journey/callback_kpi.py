"""Callback numbers: how many were asked for (by channel), how each ended, and how long the
customer waited from asking to talking to an agent.

Counted from the journey like every other KPI: ``callback_requested`` (its channel is where
it was asked), ``callback_finished`` (completed, failed, cancelled, abandoned) and
``callback_connected`` (``waited_s``: request to conversation).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.journey.events import CALLBACK_CONNECTED, CALLBACK_FINISHED, CALLBACK_REQUESTED
from ivr.journey.ports import StampedEvent

OUTCOMES = ("completed", "failed", "cancelled", "abandoned")


@dataclass(frozen=True)
class CallbackKpis:
    requested: Mapping[str, int] = field(default_factory=dict)  # channel -> requests
    finished: Mapping[str, int] = field(default_factory=dict)  # outcome -> callbacks
    connected: int = 0
    waited_s_sum: float = 0.0

    @property
    def requested_total(self) -> int:
        return sum(self.requested.values())

    @property
    def mean_wait_s(self) -> float | None:
        """Average time from the request to the conversation; None before the first."""
        return self.waited_s_sum / self.connected if self.connected else None

    def to_dict(self) -> dict[str, Any]:
        return {"requested": dict(self.requested), "requested_total": self.requested_total,
                "finished": {o: self.finished.get(o, 0) for o in OUTCOMES}, "connected": self.connected,
                "mean_wait_s": None if self.mean_wait_s is None else round(self.mean_wait_s, 1)}


class CallbackStats:
    def __init__(self) -> None:
        self._requested: Counter[str] = Counter()
        self._finished: Counter[str] = Counter()
        self._connected = 0
        self._waited = 0.0

    def add(self, event: StampedEvent, data: Mapping[str, Any]) -> None:
        if event.type == CALLBACK_REQUESTED:
            self._requested[event.channel] += 1
        elif event.type == CALLBACK_FINISHED:
            outcome = str(data.get("outcome", ""))
            if outcome in OUTCOMES:
                self._finished[outcome] += 1
        elif event.type == CALLBACK_CONNECTED:
            try:
                waited = float(data.get("waited_s", 0))
            except (TypeError, ValueError):
                return
            self._connected += 1
            self._waited += max(0.0, waited)

    def snapshot(self) -> CallbackKpis:
        return CallbackKpis(dict(self._requested), dict(self._finished), self._connected, self._waited)
