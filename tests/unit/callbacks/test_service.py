"""Taking a callback request: stored with its journey event, checked, placed in time."""

from __future__ import annotations

import pytest

from ivr.callbacks.book import CallbackBook
from ivr.callbacks.policy import CallbackPolicy, QueuePolicy
from ivr.callbacks.record import CANCELLED, WAITING
from ivr.callbacks.service import CallbackRefused, CallbackRequest, CallbackService
from ivr.journey.memory import MemoryJourney

NOW = 1_800_000_000.0


def request(number: str = "+79990001102", queue: str = "support", **kw) -> CallbackRequest:
    fields = {"key": "C-1", "number": number, "queue": queue, "priority": 0, "reason": "asked",
              "channel": "voice", "interaction": "call-1", **kw}
    return CallbackRequest(**fields)


def service(store: MemoryJourney, policy: CallbackPolicy | None = None, opens_at=lambda _queue, _now: None) -> CallbackService:
    return CallbackService(CallbackBook(store, clock=lambda: NOW), lambda: policy or CallbackPolicy(),
                           opens_at=opens_at, clock=lambda: NOW)


async def test_a_request_is_stored_waiting_with_its_journey_event() -> None:
    store = MemoryJourney()
    booked = await service(store).request(request(position=3, estimated_wait_s=400))

    stored = await CallbackBook(store).get(booked.callback.id)
    assert stored is not None and stored.state == WAITING and stored.number == "+79990001102"
    assert stored.place_at == NOW and stored.due_at == NOW
    [event] = await store.recent("C-1")
    assert (event.type, event.channel, event.interaction) == ("callback_requested", "voice", "call-1")
    assert event.data["position"] == 3 and event.data["estimated_wait_s"] == 400


async def test_a_number_given_in_national_form_is_stored_in_e164() -> None:
    booked = await service(MemoryJourney()).request(request(number="8 999 000 11 02"))
    assert booked.callback.number == "+79990001102"


@pytest.mark.parametrize("number", ["", "anonymous", "12", "+7999000110299999999"])
async def test_a_number_we_cannot_ring_is_refused(number: str) -> None:
    with pytest.raises(CallbackRefused) as info:
        await service(MemoryJourney()).request(request(number=number))
    assert info.value.why == "number"


async def test_asking_again_returns_the_callback_already_waiting() -> None:
    svc = service(MemoryJourney())
    first = await svc.request(request())
    again = await svc.request(request())
    assert again.already and again.callback.id == first.callback.id


async def test_a_full_queue_refuses_more_callbacks() -> None:
    svc = service(MemoryJourney(), CallbackPolicy(queues={"support": QueuePolicy(max_waiting=1)}))
    await svc.request(request())
    with pytest.raises(CallbackRefused) as info:
        await svc.request(request(number="+79990001103"))
    assert info.value.why == "full"


async def test_outside_business_hours_it_is_due_at_the_opening() -> None:
    booked = await service(MemoryJourney(), opens_at=lambda _queue, now: now + 3600).request(request())
    assert booked.opens_at == NOW + 3600 and booked.callback.due_at == NOW + 3600


async def test_a_cancelled_callback_is_finished_and_cannot_be_cancelled_twice() -> None:
    store = MemoryJourney()
    svc = service(store)
    booked = await svc.request(request())

    cancelled = await svc.cancel(booked.callback.id, by="admin")
    assert cancelled is not None and cancelled.state == CANCELLED
    assert await svc.cancel(booked.callback.id, by="admin") is None
    assert [e.type for e in await store.recent("C-1")][0] == "callback_finished"


async def test_a_store_that_is_down_refuses_politely() -> None:
    store = MemoryJourney()
    await store.close()
    with pytest.raises(CallbackRefused) as info:
        await service(store).request(request())
    assert info.value.why == "unavailable"
