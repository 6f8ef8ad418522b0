"""The ``callback`` action: a menu on any channel asks to be called back.

A tree offers it like any other action (``action: callback``, ``args: {queue: support}``,
optionally ``number:`` a number the caller keyed in and confirmed); every other action
goes on to the CRM. The routing rules decide the queue and priority exactly as for a
caller who waits (a VIP is still a VIP, a debtor still goes to collections, a blacklisted
number is refused), and ``result`` tells the next node what to say: the number, the
place, and when we will call (``opens`` when it is outside business hours).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ivr.callbacks.record import Callback
from ivr.callbacks.service import Booked, CallbackRefused, CallbackRequest, CallbackService
from ivr.crm.numbers import normalise
from ivr.crm.ports import ActionService
from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult
from ivr.routing.service import RoutingService

log = logging.getLogger(__name__)
CALLBACK_ACTION = "callback"


class CallbackConfirmations(Protocol):
    """Tells the customer by SMS that the callback is booked (any channel) or that we tried."""

    async def booked(self, callback: Callback, opens_at: float | None) -> None: ...

    async def missed(self, callback: Callback) -> None: ...


class CallbackActions:
    """An ActionService that takes ``callback`` itself and passes everything else to ``inner``."""

    def __init__(self, inner: ActionService, service: CallbackService, router: RoutingService, *, channel: str,
                 default_queue: Callable[[], str], timezone: Callable[[], str] = lambda: "UTC",
                 confirmations: CallbackConfirmations | None = None,
                 queue_facts: Callable[[str], Mapping[str, Any]] | None = None) -> None:
        self.inner = inner
        self.service = service
        self.router = router
        self.channel = channel
        self.default_queue = default_queue
        self.timezone = timezone
        self.confirmations = confirmations
        self.queue_facts = queue_facts

    async def run(self, name: str, args: Mapping[str, Any], context: CallerContext,
                  *, interaction: str) -> ActionResult:
        if name != CALLBACK_ACTION:
            return await self.inner.run(name, args, context, interaction=interaction)
        caller = normalise(str(context.caller.get("number") or ""))
        key = str(context.customer.get("id") or caller or f"{self.channel}:{interaction}")
        queue = str(args.get("queue") or self.default_queue())
        decision = await self.router.decide(
            queue=queue, priority=_int(args.get("priority")), reason=str(args.get("reason") or "callback requested"),
            customer=context.customer, caller_number=caller, dnis=context.dnis, journey_key=key,
            crm_status="found" if context.customer.get("id") else "unknown", when_open=True)
        if decision.kind != "queue":
            return ActionResult(name, False, {"error": "callbacks are not offered to this number", "why": "refused"})
        facts = self.queue_facts(decision.queue) if self.queue_facts is not None else {}
        request = CallbackRequest(
            key=key, number=str(args.get("number") or caller or ""), queue=decision.queue,
            priority=decision.priority, reason=decision.reason, channel=self.channel, interaction=interaction,
            language=str(context.customer.get("language") or ""), name=str(context.customer.get("name") or ""),
            position=_int(facts.get("position")),
            estimated_wait_s=float(facts.get("estimated_wait") or 0))
        try:
            booked = await self.service.request(request)
        except CallbackRefused as exc:
            log.info("callback for %s refused: %s", key, exc)
            return ActionResult(name, False, {"error": str(exc), "why": exc.why})
        if self.confirmations is not None and not booked.already:
            try:
                await self.confirmations.booked(booked.callback, booked.opens_at)
            except Exception as exc:  # noqa: BLE001 - the callback stands without its SMS
                log.warning("callback %s: the confirmation SMS was not sent: %s", booked.callback.id, exc)
        return ActionResult(name, True, self._result(booked, facts))

    def _result(self, booked: Booked, facts: Mapping[str, Any]) -> dict[str, Any]:
        cb = booked.callback
        data: dict[str, Any] = {"id": cb.id, "number": cb.number, "queue": cb.queue, "already": booked.already,
                                "scheduled": booked.opens_at is not None, "opens": "",
                                "position": _int(facts.get("position")),
                                "estimated_minutes": _int(facts.get("estimated_minutes"))}
        if booked.opens_at is not None:
            from zoneinfo import ZoneInfo
            local = dt.datetime.fromtimestamp(booked.opens_at, ZoneInfo(self.timezone()))
            data["opens"] = local.strftime("%H:%M")
            data["opens_date"] = local.date().isoformat()
        return data


def _int(value: object) -> int:
    try:
        return int(str(value)) if value not in (None, "") else 0
    except ValueError:
        return 0
