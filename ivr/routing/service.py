"""Routing as the drivers use it: gather what the rules need, decide, never fail the caller.

The rules read the journey (who served the last call) and the clock; both come in here,
so :func:`ivr.routing.rules.decide` stays pure. If anything goes wrong (a journey store
that is down, a broken rule), the caller still goes to the queue the menu asked for,
with the reason saying why routing fell back.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ivr.routing.rules import RouteDecision, RouteRequest, RoutingConfig, decide

log = logging.getLogger(__name__)
LAST_AGENT_WINDOW_S = 14 * 86400


class LastAgentSource(Protocol):
    async def last_agent(self, key: str, within_s: float) -> str | None: ...


class RoutingService:
    def __init__(self, config: Callable[[], RoutingConfig], journey: LastAgentSource | None = None, *,
                 last_agent_window_s: float = LAST_AGENT_WINDOW_S,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self._config = config
        self.journey = journey
        self.last_agent_window_s = last_agent_window_s
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    async def decide(self, *, queue: str, priority: int, reason: str, customer: Mapping[str, Any],
                     caller_number: str | None, dnis: str | None, journey_key: str,
                     crm_status: str, when_open: bool = False) -> RouteDecision:
        """``when_open``: decide as the rules will at the contact centre's next opening when it
        is closed now (a callback booked at night is routed as the call it will be)."""
        last_agent = None
        if self.journey is not None:
            try:
                last_agent = await self.journey.last_agent(journey_key, self.last_agent_window_s)
            except Exception as exc:  # noqa: BLE001 - routing must not depend on the journey being up
                log.warning("last agent unknown for %s: %s", journey_key, exc)
        request = RouteRequest(queue, priority, reason, customer, caller_number, dnis, last_agent, crm_status)
        try:
            config = self._config()
            moment = self.clock()
            opening = config.hours.next_opening(moment) if when_open else None
            return decide(config, request, opening or moment)
        except Exception as exc:  # noqa: BLE001
            log.exception("routing rules failed; using the menu's queue")
            return RouteDecision("queue", queue, priority, f"{reason}; routing rules failed ({exc})")
