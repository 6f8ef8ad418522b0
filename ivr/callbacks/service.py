"""Taking a callback request from any channel: check it, place it, store it.

The service never dials; it writes the record that the voice side's dialer keeps in the
queue (:mod:`ivr.voice.callback_dialer`). A request outside business hours is stored with
``due_at`` at the opening, and the answer says so, so every channel can tell the customer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ivr.callbacks.book import CallbackBook
from ivr.callbacks.policy import CallbackPolicy
from ivr.callbacks.record import CANCELLED, Callback, new_id
from ivr.crm.numbers import normalise
from ivr.errors import IvrError
from ivr.journey.events import CALLBACK_FINISHED, CALLBACK_REQUESTED

log = logging.getLogger(__name__)


class CallbackRefused(IvrError):
    """The request cannot be taken; ``why`` is a word a channel can choose its words by:
    ``number`` (not a number we can ring), ``full`` (the queue's callbacks are at their
    maximum), ``unavailable`` (the store is down)."""

    error_id = "callback-refused"

    def __init__(self, why: str, message: str) -> None:
        self.why = why
        super().__init__(message)


@dataclass(frozen=True)
class CallbackRequest:
    key: str  # the customer's journey key
    number: str  # as the customer gave it; normalised here
    queue: str
    priority: int
    reason: str
    channel: str
    interaction: str
    language: str = ""
    name: str = ""
    place_at: float | None = None  # when they would have joined the queue; default: now
    position: int = 0  # their place when they asked (for the journey)
    estimated_wait_s: float = 0.0


@dataclass(frozen=True)
class Booked:
    callback: Callback
    already: bool = False  # the same number already had an open callback in this queue
    opens_at: float | None = None  # outside business hours: when it will be dialled from


class CallbackService:
    def __init__(self, book: CallbackBook, policy: Callable[[], CallbackPolicy], *,
                 opens_at: Callable[[str, float], float | None] = lambda _queue, _now: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.book = book
        self._policy = policy
        self.opens_at = opens_at
        self.clock = clock

    async def request(self, request: CallbackRequest) -> Booked:
        number = normalise(request.number)
        if number is None:
            raise CallbackRefused("number", f"{request.number!r} is not a phone number we can call")
        try:
            waiting = [c for c in await self.book.open() if c.queue == request.queue]
        except Exception as exc:  # noqa: BLE001 - the channel says "not now", never crashes
            raise CallbackRefused("unavailable", f"callbacks cannot be stored now: {exc}") from exc
        for callback in waiting:
            if callback.number == number:
                return Booked(callback, already=True)
        policy = self._policy().for_queue(request.queue)
        if len(waiting) >= policy.max_waiting:
            raise CallbackRefused("full", f"queue {request.queue} already has {len(waiting)} callbacks waiting"
                                          f" (max_waiting {policy.max_waiting})")
        now = self.clock()
        opening = self.opens_at(request.queue, now)
        callback = Callback(
            id=new_id(now), key=request.key, number=number, queue=request.queue, priority=request.priority,
            reason=request.reason, channel=request.channel, interaction=request.interaction, requested_at=now,
            place_at=request.place_at if request.place_at is not None else now,
            due_at=opening if opening is not None else now, language=request.language, name=request.name)
        try:
            await self.book.add(callback, CALLBACK_REQUESTED, {
                "queue": callback.queue, "priority": callback.priority, "number": number,
                "position": request.position, "estimated_wait_s": round(request.estimated_wait_s),
                "due_at": callback.due_at, "reason": callback.reason})
        except Exception as exc:  # noqa: BLE001
            log.exception("callback for %s not stored", request.key)
            raise CallbackRefused("unavailable", f"callbacks cannot be stored now: {exc}") from exc
        log.info("callback %s booked: %s in %s (priority %d)%s", callback.id, number, callback.queue,
                 callback.priority, " after the opening" if opening is not None else "")
        return Booked(callback, opens_at=opening)

    async def cancel(self, callback_id: str, by: str) -> Callback | None:
        """Cancel an open callback; None when it is unknown or already finished."""
        return await self.book.change(
            callback_id, lambda c: c.but(state=CANCELLED, outcome=f"cancelled by {by}") if c.open else None,
            CALLBACK_FINISHED, lambda c: {"outcome": CANCELLED, "attempts": c.attempts, "by": by})
