"""The agents' numbers: handle time, time to answer, transfers per call, first-contact resolution.

Folded from the journey like the rest of :mod:`ivr.journey.kpi`, per queue and per route
reason (the reason the routing rules gave the call: "VIP", "collections: overdue", ...):

- **Handle time** is the queue's own measure: ``agent_completed`` (AMI ``AgentComplete``)
  carries the talk time from the agent's answer to the end of their part. Average handle
  time is talk time / completed parts.
- **Time to answer** is the queue wait ``agent_connected`` reports (``HoldTime``).
- **Transfers per call**: ``call_transferred`` events / calls an agent answered.
- **First-contact resolution**: a call an agent answered is resolved at first contact when
  the same customer makes no new contact, on any channel, within the window the admin
  sets (``[kpi] fcr_window_hours``). A call is counted once its window has passed; until
  then it is *pending*, so a report never calls a contact resolved that may still repeat.

The customer's key is kept in memory only for the window (to see a repeat); it is never a
label and never leaves this module.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ivr.journey import events as E
from ivr.journey.ports import StampedEvent

DEFAULT_FCR_WINDOW_S = 72 * 3600
MAX_CUSTOMERS = 100_000
NO_REASON = "-"

Group = tuple[str, str]  # (queue, route reason)


@dataclass(frozen=True)
class GroupStats:
    """One queue and route reason's numbers (sums and counts, so groups add up)."""

    handled: int = 0  # agent parts completed
    handle_s: float = 0.0
    answered: int = 0  # agent answers
    answer_wait_s: float = 0.0
    calls: int = 0  # calls an agent answered (once per call)
    transfers: int = 0
    fcr_resolved: int = 0
    fcr_repeat: int = 0

    @property
    def aht_s(self) -> float | None:
        return self.handle_s / self.handled if self.handled else None

    @property
    def answer_s(self) -> float | None:
        return self.answer_wait_s / self.answered if self.answered else None

    @property
    def transfers_per_call(self) -> float | None:
        return self.transfers / self.calls if self.calls else None

    @property
    def fcr(self) -> float | None:
        settled = self.fcr_resolved + self.fcr_repeat
        return self.fcr_resolved / settled if settled else None

    def plus(self, other: GroupStats) -> GroupStats:
        return replace(self, **{name: getattr(self, name) + getattr(other, name) for name in _FIELDS})

    def to_dict(self) -> dict[str, Any]:
        return {"handled": self.handled, "aht_s": _round(self.aht_s), "answered": self.answered,
                "avg_answer_s": _round(self.answer_s), "calls": self.calls, "transfers": self.transfers,
                "transfers_per_call": _round(self.transfers_per_call, 3), "fcr_resolved": self.fcr_resolved,
                "fcr_repeat": self.fcr_repeat, "fcr": _round(self.fcr, 4)}


@dataclass(frozen=True)
class AgentKpis:
    groups: Mapping[Group, GroupStats] = field(default_factory=dict)
    fcr_pending: int = 0
    fcr_window_s: float = DEFAULT_FCR_WINDOW_S

    def by(self, index: int) -> dict[str, GroupStats]:
        """Per queue (0) or per route reason (1)."""
        out: dict[str, GroupStats] = {}
        for group, stats in self.groups.items():
            out[group[index]] = out.get(group[index], GroupStats()).plus(stats)
        return out

    @property
    def total(self) -> GroupStats:
        total = GroupStats()
        for stats in self.groups.values():
            total = total.plus(stats)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total.to_dict(), "fcr_window_hours": round(self.fcr_window_s / 3600, 2),
                "fcr_pending": self.fcr_pending,
                "by_queue": {q: s.to_dict() for q, s in sorted(self.by(0).items())},
                "by_reason": {r: s.to_dict() for r, s in sorted(self.by(1).items())}}


@dataclass
class _Call:
    reason: str = NO_REASON
    queue: str = ""  # the queue of the agent on the call now
    answered: bool = False


@dataclass
class _Contact:
    interaction: str
    at: float
    group: Group
    repeat: bool = False


class AgentStats:
    """Live agent numbers; fed by :class:`ivr.journey.kpi.KpiAccumulator` with every stored event."""

    def __init__(self, *, fcr_window_s: float = DEFAULT_FCR_WINDOW_S, clock: Callable[[], float] | None = None,
                 label: Callable[[object], str] = str, max_customers: int = MAX_CUSTOMERS) -> None:
        self.fcr_window_s = fcr_window_s
        self._clock = clock
        self._label = label
        self._max = max_customers
        self._groups: dict[Group, GroupStats] = {}
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._contacts: OrderedDict[str, list[_Contact]] = OrderedDict()  # customer key -> contacts in the window
        self._last_at = 0.0

    def started(self, key: str, event: StampedEvent) -> None:
        """A new interaction of ``key``: any contact of theirs still in its window was not resolved."""
        for contact in self._contacts.get(key, ()):
            if contact.interaction != event.interaction and contact.at <= event.at <= contact.at + self.fcr_window_s:
                contact.repeat = True

    def add(self, key: str, event: StampedEvent, data: Mapping[str, Any]) -> None:
        self._last_at = max(self._last_at, event.at)
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, key, event, data)

    def _call(self, interaction: str) -> _Call:
        call = self._calls.get(interaction)
        if call is None:
            call = self._calls[interaction] = _Call()
            if len(self._calls) > self._max:
                self._calls.popitem(last=False)
        return call

    def _bump(self, group: Group, **increments: float) -> None:
        stats = self._groups.get(group, GroupStats())
        self._groups[group] = replace(stats, **{k: getattr(stats, k) + v for k, v in increments.items()})

    def _on_route(self, _key: str, event: StampedEvent, data: Mapping[str, Any]) -> None:
        if data.get("kind", "queue") == "queue" and not data.get("transfer"):
            call = self._call(event.interaction)
            call.reason = self._label(data.get("reason") or NO_REASON)
            call.queue = call.queue or self._label(data.get("queue") or "")

    def _on_connected(self, key: str, event: StampedEvent, data: Mapping[str, Any]) -> None:
        queue = self._label(data.get("queue") or "")
        if not queue:  # a named agent dialled directly: no queue wait to count
            return
        call = self._call(event.interaction)
        call.queue = queue
        group = (queue, call.reason)
        self._bump(group, answered=1, answer_wait_s=_seconds(data.get("hold_s")))
        if not call.answered:
            call.answered = True
            self._bump(group, calls=1)
            contacts = self._contacts.setdefault(key, [])
            self._contacts.move_to_end(key)
            contacts.append(_Contact(event.interaction, event.at, group))
            while len(self._contacts) > self._max:
                self._settle_all(self._contacts.popitem(last=False)[1])

    def _on_completed(self, _key: str, event: StampedEvent, data: Mapping[str, Any]) -> None:
        call = self._call(event.interaction)
        queue = self._label(data.get("queue") or call.queue or "")
        self._bump((queue, call.reason), handled=1, handle_s=_seconds(data.get("talk_s")))

    def _on_transferred(self, _key: str, event: StampedEvent, _data: Mapping[str, Any]) -> None:
        call = self._call(event.interaction)
        self._bump((call.queue or "-", call.reason), transfers=1)

    def _settle_all(self, contacts: list[_Contact]) -> None:
        for contact in contacts:
            self._bump(contact.group, **({"fcr_repeat": 1} if contact.repeat else {"fcr_resolved": 1}))

    def snapshot(self, horizon: float | None = None) -> AgentKpis:
        """The numbers now; contacts whose window ended by ``horizon`` are settled for good."""
        if horizon is None:
            horizon = self._clock() if self._clock is not None else self._last_at
        pending = 0
        for key in list(self._contacts):
            contacts = self._contacts[key]
            done = [c for c in contacts if c.repeat or c.at + self.fcr_window_s <= horizon]
            self._settle_all(done)
            left = [c for c in contacts if c not in done]
            pending += len(left)
            if left:
                self._contacts[key] = left
            else:
                del self._contacts[key]
        return AgentKpis(dict(self._groups), pending, self.fcr_window_s)


_FIELDS = tuple(GroupStats.__dataclass_fields__)

_HANDLERS: dict[str, Callable[[AgentStats, str, StampedEvent, Mapping[str, Any]], None]] = {
    E.ROUTE_DECIDED: AgentStats._on_route,
    E.ROUTE_CHOSEN: AgentStats._on_route,
    E.AGENT_CONNECTED: AgentStats._on_connected,
    E.AGENT_COMPLETED: AgentStats._on_completed,
    E.CALL_TRANSFERRED: AgentStats._on_transferred,
}


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return 0.0
    return float(value)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
