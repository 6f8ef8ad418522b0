"""The live feed: open agent pages hear of stored events, redacted, without slowing the writer."""

from __future__ import annotations

from ivr.journey.feed import MAX_QUEUED, JourneyFeed
from ivr.journey.kpi import KpiAccumulator
from ivr.journey.memory import MemoryJourney
from ivr.journey.metered import MeteredJourney
from ivr.journey.ports import StampedEvent
from tests.clock import T0


def ev(type_: str = "key_pressed", **data: object) -> StampedEvent:
    return StampedEvent(T0, "voice", "call-1", type_, dict(data))


async def test_a_stored_event_reaches_the_pages_open_on_its_customer_only() -> None:
    feed = JourneyFeed()
    mine, other = feed.subscribe("C-1"), feed.subscribe("C-2")
    store = MeteredJourney(MemoryJourney(), KpiAccumulator(), feed)

    await store.append("C-1", [ev(key="2")])

    assert (await mine.next(0.1)) == ev(key="2")
    assert await other.next(0.01) is None


async def test_a_page_sees_the_event_as_stored_with_its_secrets_dropped() -> None:
    feed = JourneyFeed()
    page = feed.subscribe("C-1")

    feed.publish("C-1", [ev("action_requested", name="change_pin", args={"new_pin": "1234"})])

    event = await page.next(0.1)
    assert event is not None and event.data["args"] == {} and event.data["redacted"] == ["args.new_pin"]


async def test_an_append_the_store_refused_reaches_no_page() -> None:
    class Down(MemoryJourney):
        async def append(self, key, events):
            raise OSError("disk full")

    feed = JourneyFeed()
    page = feed.subscribe("C-1")
    store = MeteredJourney(Down(), KpiAccumulator(), feed)

    try:
        await store.append("C-1", [ev()])
    except OSError:
        pass
    assert await page.next(0.01) is None


def test_a_page_that_falls_behind_is_marked_for_a_resync_and_the_writer_never_waits() -> None:
    feed = JourneyFeed()
    page = feed.subscribe("C-1")

    for _ in range(MAX_QUEUED + 5):
        feed.publish("C-1", [ev()])

    assert page.overflowed and page.queue.qsize() == MAX_QUEUED


def test_a_closed_page_is_forgotten() -> None:
    feed = JourneyFeed()
    page = feed.subscribe("C-1")

    feed.unsubscribe(page)

    assert feed.subscribers() == 0
