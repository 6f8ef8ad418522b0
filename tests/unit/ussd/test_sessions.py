"""Session records survive the kv table's JSON exactly as the engine needs them for a replay."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import MappingProxyType

import pytest

from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult
from ivr.journey.errors import WriteConflict
from ivr.journey.memory import MemoryJourney
from ivr.journey.ports import StampedEvent
from ivr.ussd.config import SessionPolicy
from ivr.ussd.protocol import UssdReply
from ivr.ussd.sessions import (
    DONE,
    RUN,
    SessionRecord,
    SessionStore,
    decode_record,
    encode_record,
)
from tests.clock import FakeClock


def record(**changes: object) -> SessionRecord:
    context = CallerContext(customer={"id": "C-1", "balance": Decimal("15420.75"), "services": ["roaming"],
                                      "last_contact": dt.date(2024, 5, 1)},
                            caller={"number": "+79991234567"}, dnis="*111#", now={"hour": 9, "weekday": 0})
    fields: dict[str, object] = {
        "session_id": "ATUid_1", "code": "*111#", "number": "+79991234567", "journey_key": "C-1",
        "tree": "2024.11.1", "context": context, "state": RUN, "created": 100.0, "updated": 120.0,
        "inputs": ("3", "1"), "results": (ActionResult("balance", True, MappingProxyType(
            {"balance": Decimal("1.50"), "currency": "RUB"})),),
        "last_text": "3*1", "reply": UssdReply(False, "Menu\n1. A")}
    fields.update(changes)
    return SessionRecord(**fields)  # type: ignore[arg-type]


def test_the_customer_an_action_left_behind_round_trips_with_its_result() -> None:
    """A replayed session must show the menus the live one showed after a service was switched."""
    after = MappingProxyType({"id": "C-1", "services": ["caller_id", "roaming"], "balance": Decimal("15420.75")})
    original = record(results=(ActionResult("service_on", True, MappingProxyType({"service": "caller_id"}), after),))
    again = decode_record(encode_record(original))
    customer = again.results[0].customer
    assert customer == after and customer is not None and isinstance(customer["balance"], Decimal)


def test_a_record_round_trips_through_json_with_money_and_dates_intact() -> None:
    original = record()
    again = decode_record(encode_record(original))
    assert again == original
    assert isinstance(again.context.customer["balance"], Decimal)
    assert isinstance(again.results[0].data["balance"], Decimal)


def test_a_masked_input_is_kept_as_its_position_and_blanked_in_the_text() -> None:
    stored = encode_record(record(inputs=("8", "123456", 3), last_text="8*123456*1*9876"))
    assert stored["inputs"] == ["8", "123456", 3]
    assert stored["text"] == "8*123456*1*"


def test_a_session_with_inputs_of_its_own_is_resumable() -> None:
    assert record().resumable
    assert not record(inputs=("2",), preset=1).resumable
    assert not record(finished=True).resumable
    assert not record(state=DONE).resumable
    assert not record(inputs=("8", 1)).resumable


async def test_the_store_points_the_number_at_its_resumable_session() -> None:
    journey = MemoryJourney()
    store = SessionStore(journey, SessionPolicy())
    await store.save(record(), 120.0)
    assert await store.resume_target("+79991234567") == "ATUid_1"
    loaded = await store.load("ATUid_1")
    assert loaded is not None and loaded.resume_until > 120.0


async def test_a_record_expires_after_timeout_plus_resume_window() -> None:
    clock = FakeClock(120.0)
    journey = MemoryJourney(clock=clock)
    store = SessionStore(journey, SessionPolicy(timeout_s=180, resume_window_s=120), clock=clock)
    await store.save(record(), clock())
    clock.advance(299)
    assert await store.load("ATUid_1") is not None
    clock.advance(2)
    assert await store.load("ATUid_1") is None


async def test_an_unreadable_record_is_treated_as_unknown() -> None:
    journey = MemoryJourney()
    await journey.kv_put("ussd", "ATUid_1", {"v": 99}, 60)
    assert await SessionStore(journey, SessionPolicy()).load("ATUid_1") is None


async def moved_on_elsewhere(journey: MemoryJourney) -> SessionStore:
    """A store that saved the record, after another process's store moved the session on."""
    here = SessionStore(journey, SessionPolicy(), clock=lambda: 125.0)
    elsewhere = SessionStore(journey, SessionPolicy(), clock=lambda: 125.0)
    await here.save(record(), 120.0)
    theirs = await elsewhere.load("ATUid_1")
    assert theirs is not None
    await elsewhere.save(theirs.advance(inputs=("3", "1", "2"), last_text="3*1*2", updated=130.0), 130.0)
    return here


async def test_a_stale_record_is_never_saved_over_the_one_another_process_stored() -> None:
    journey = MemoryJourney()
    here = await moved_on_elsewhere(journey)
    stale = await here.load("ATUid_1")
    assert stale is not None and stale.inputs == ("3", "1")  # answered from memory, unread

    with pytest.raises(WriteConflict):
        await here.save(stale.advance(inputs=("3", "1", "9"), last_text="3*1*9", updated=131.0), 131.0)

    stored = await SessionStore(journey, SessionPolicy()).load("ATUid_1")
    assert stored is not None and stored.inputs == ("3", "1", "2")


async def test_after_a_conflict_the_record_is_read_from_the_store() -> None:
    journey = MemoryJourney()
    here = await moved_on_elsewhere(journey)
    stale = await here.load("ATUid_1")
    assert stale is not None
    with pytest.raises(WriteConflict):
        await here.save(stale.advance(updated=131.0), 131.0)

    loaded = await here.load("ATUid_1")

    assert loaded is not None and loaded.inputs == ("3", "1", "2") and loaded.updated == 130.0


async def test_a_fresh_load_reads_what_another_process_stored() -> None:
    here = await moved_on_elsewhere(MemoryJourney())

    loaded = await here.load("ATUid_1", fresh=True)

    assert loaded is not None and loaded.inputs == ("3", "1", "2")


async def test_a_known_record_the_caller_does_not_trust_is_not_offered() -> None:
    here = await moved_on_elsewhere(MemoryJourney())

    assert here.known("ATUid_1", trust=lambda known: len(known.inputs) > 2) is None
    assert here.known("ATUid_1", trust=lambda known: len(known.inputs) == 2) is not None


async def test_a_record_another_process_moved_on_is_no_longer_stored() -> None:
    here = await moved_on_elsewhere(MemoryJourney())
    stale = here.known("ATUid_1")

    assert stale is not None and not await here.still_stored(stale)


async def test_the_record_this_process_saved_is_still_stored() -> None:
    here = SessionStore(MemoryJourney(), SessionPolicy(), clock=lambda: 125.0)
    await here.save(record(), 120.0)
    saved = here.known("ATUid_1")

    assert saved is not None and await here.still_stored(saved)


async def test_a_record_loaded_after_saving_it_is_the_one_a_fresh_process_reads() -> None:
    journey = MemoryJourney()
    here = SessionStore(journey, SessionPolicy())
    await here.save(record(inputs=("8", "123456", 3), last_text="8*123456*1*9876"), 120.0)

    cached = await here.load("ATUid_1")
    fresh = await SessionStore(journey, SessionPolicy()).load("ATUid_1")

    assert cached == fresh and cached is not None and cached.last_text == "8*123456*1*"


async def test_saving_a_record_appends_its_events_in_the_same_write() -> None:
    journey = MemoryJourney()
    event = StampedEvent(120.0, "ussd", "ATUid_1", "ussd_screen", {"title": "Menu"})

    await SessionStore(journey, SessionPolicy()).save(record(), 120.0, [event])

    assert [e.type for e in journey.events("C-1")] == ["ussd_screen"]


async def test_a_record_that_is_not_a_json_object_is_treated_as_unknown() -> None:
    journey = MemoryJourney()
    journey._kv[("ussd", "ATUid_1")] = ('["not", "a", "record"]', 1e12)

    assert await SessionStore(journey, SessionPolicy()).load("ATUid_1") is None
