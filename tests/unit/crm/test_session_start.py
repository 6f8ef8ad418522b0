"""The one caller-session start every channel uses: number in, context, journey key and events out."""

from __future__ import annotations

import datetime as dt

import pytest

from ivr.crm.errors import CrmUnavailable
from ivr.crm.lookup import CrmLookup
from ivr.crm.session_start import NOT_ASKED, CallerSessions, clean_caller_field
from ivr.journey.events import CALLER_IDENTIFIED, CRM_UNAVAILABLE
from tests.unit.crm.fakes import FakeClock, FakeDirectory, anna

MOMENT = dt.datetime(2026, 12, 4, 10, 30, tzinfo=dt.UTC)  # a Friday


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory({"+79991234567": anna()})


@pytest.fixture
def callers(directory: FakeDirectory) -> CallerSessions:
    return CallerSessions(CrmLookup(directory, clock=FakeClock()), clock=lambda: MOMENT)


async def test_a_customer_gets_their_fields_their_id_as_journey_key_and_an_identified_event(
        callers: CallerSessions) -> None:
    start = await callers.start("8 999 123-45-67", dnis="100")
    assert (start.status, start.number, start.journey_key) == ("found", "+79991234567", "C-100231")
    assert start.context.customer["name"] == "Anna" and start.context.dnis == "100"
    assert [kind for kind, _ in start.events] == [CALLER_IDENTIFIED]
    assert start.events[0][1]["customer"] == "C-100231" and start.events[0][1]["by"] == "caller_id"


async def test_an_unknown_number_is_its_own_journey_key_with_no_event(callers: CallerSessions) -> None:
    start = await callers.start("+79990001122")
    assert (start.status, start.journey_key, start.events) == ("unknown", "+79990001122", ())
    assert dict(start.context.customer) == {}


async def test_a_dead_crm_gives_the_generic_menu_and_says_so_in_the_journey(
        callers: CallerSessions, directory: FakeDirectory) -> None:
    directory.fail = CrmUnavailable("connection refused", operation="by_number")
    start = await callers.start("+79991234567")
    assert (start.status, start.journey_key) == ("unavailable", "+79991234567")
    assert [kind for kind, _ in start.events] == [CRM_UNAVAILABLE]
    assert dict(start.context.customer) == {}


async def test_a_withheld_number_goes_under_the_fallback_key(callers: CallerSessions) -> None:
    start = await callers.start("", fallback_key="call:1700000000.1")
    assert (start.status, start.journey_key, start.number) == ("no-caller-id", "call:1700000000.1", None)


async def test_without_a_crm_every_caller_is_unknown_under_their_number() -> None:
    start = await CallerSessions(None).start("79991234567", fallback_key="call:1")
    assert (start.status, start.journey_key, start.events) == (NOT_ASKED, "79991234567", ())


async def test_the_clock_fields_are_the_sessions_moment(callers: CallerSessions) -> None:
    start = await callers.start("+79990001122")
    assert dict(start.context.now) == {"hour": 10, "minute": 30, "weekday": 4, "date": "2026-12-04"}


@pytest.mark.parametrize(("raw", "shown"), [
    ("79991234567\x00\x1b[31m", "79991234567  [31m"),
    ("x" * 100, "x" * 64),
    (None, ""),
])
def test_caller_supplied_fields_lose_control_characters_and_excess_length(raw: str | None, shown: str) -> None:
    assert clean_caller_field(raw) == shown


async def test_a_caller_id_name_is_kept_cleaned(callers: CallerSessions) -> None:
    start = await callers.start("+79990001122", caller_name="Ann\x07a")
    assert start.context.caller == {"number": "+79990001122", "name": "Ann a"}


async def test_the_queues_a_session_starts_with_are_those_of_the_asterisk_the_call_is_on():
    asked = []

    def facts(node: str):
        asked.append(node)
        return {"name": "support", "waiting": 4 if node == "asterisk2" else 1}, {}

    start = await CallerSessions(None, queue_facts=facts).start("79991234567", node="asterisk2")

    assert asked == ["asterisk2"] and start.context.queue["waiting"] == 4
