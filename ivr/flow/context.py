"""What the host knows about the caller when the call starts.

The engine reads no clock and no database: the host looks the caller up in the
CRM and passes the result in, together with the current time split into the
fields templates use (``now.hour``, ``now.weekday``, ``now.date``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, Any] = MappingProxyType({})
#: ``queue`` when the host knows nothing of the queues (no Asterisk: simulate, tests).
UNKNOWN_QUEUE: Mapping[str, Any] = MappingProxyType({
    "name": "", "known": False, "position": 1, "waiting": 0, "agents": 0, "estimated_wait": 0,
    "estimated_minutes": 0, "offer_callback": False})


@dataclass(frozen=True, slots=True)
class CallerContext:
    """The caller as the templates see it; see docs/menus.md, "Template context".

    ``customer`` holds CRM fields (id, name, balance, currency, segment, language,
    debt, overdue_days, services, manager, ...) and is empty for an unknown caller;
    ``caller`` holds ``number`` and optionally ``name``; ``now`` holds ``hour``,
    ``weekday`` (0 = Monday) and ``date``; ``queue`` the default queue's place and wait
    (``position``, ``estimated_wait`` in seconds, ``estimated_minutes``, ``offer_callback``)
    and ``queues`` the same for every queue by name (see :mod:`ivr.callbacks.wait`).
    """

    customer: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    caller: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    dnis: str | None = None
    now: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    queue: Mapping[str, Any] = field(default_factory=lambda: UNKNOWN_QUEUE)
    queues: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: EMPTY)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CallerContext:
        """Build from a plain mapping with the same keys (tests, JSON fixtures)."""
        dnis = data.get("dnis")
        return cls(
            customer=data.get("customer") or EMPTY,
            caller=data.get("caller") or EMPTY,
            dnis=None if dnis is None else str(dnis),
            now=data.get("now") or EMPTY,
            queue=data.get("queue") or UNKNOWN_QUEUE,
            queues=data.get("queues") or EMPTY,
        )

    @classmethod
    def coerce(cls, context: CallerContext | Mapping[str, Any] | None) -> CallerContext:
        if context is None:
            return cls()
        if isinstance(context, CallerContext):
            return context
        return cls.from_mapping(context)
