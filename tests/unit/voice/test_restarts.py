"""After AMI logs in again: the routed calls Asterisk forgot are journaled as lost, the drivers told again."""

from __future__ import annotations

from ivr.journey.memory import MemoryJourney
from ivr.voice.agent_events import AgentEventRecorder, RoutedCall
from ivr.voice.restarts import RESTARTED, UNSEEN, RestartWatch


class FakeAsterisk:
    def __init__(self, name: str = "", started: str = "2026-12-06 01:00:00") -> None:
        self.name, self.started, self.channels = name, started, set[str]()
        self.not_ready = 0

    async def core_identity(self) -> tuple[str, str]:
        if self.not_ready:
            self.not_ready -= 1
            raise RuntimeError("Asterisk is still booting")
        return self.name, self.started

    async def channel_ids(self) -> set[str]:
        return set(self.channels)


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


async def watch_with(asterisk: FakeAsterisk, journey: MemoryJourney, *uids: str) -> tuple[RestartWatch, Counter]:
    recorder = AgentEventRecorder(journey)
    for uid in uids:
        recorder.track(uid, RoutedCall(f"+7999000{uid[-1]}", "voice", "support"))
    republish = Counter()
    watch = RestartWatch(asterisk, recorder, republish, retry_s=0)
    await watch.remember()
    return watch, republish


async def lost(journey: MemoryJourney, key: str) -> list[dict[str, object]]:
    return [dict(e.data) for e in await journey.recent(key) if e.type == "call_lost"]


async def test_after_a_restart_every_routed_call_asterisk_no_longer_has_is_journaled_lost() -> None:
    journey, asterisk = MemoryJourney(), FakeAsterisk()
    watch, republish = await watch_with(asterisk, journey, "1700.1", "1700.2")
    asterisk.started, asterisk.channels = "2026-12-06 01:05:00", {"1700.2"}

    await watch.after_relogin()
    await watch.recorder.drain()

    assert await lost(journey, "+79990001") == [{"queue": "support", "reason": RESTARTED}]
    assert await lost(journey, "+79990002") == []  # still there: kept
    assert watch.restarts == 1 and republish.calls == 1


async def test_a_dropped_link_without_a_restart_journals_only_calls_that_ended_unseen() -> None:
    journey, asterisk = MemoryJourney(), FakeAsterisk()
    watch, _ = await watch_with(asterisk, journey, "1700.1")

    await watch.after_relogin()
    await watch.recorder.drain()

    assert await lost(journey, "+79990001") == [{"queue": "support", "reason": UNSEEN}]
    assert watch.restarts == 0


async def test_calls_of_another_asterisk_in_the_cluster_are_left_alone() -> None:
    journey, asterisk = MemoryJourney(), FakeAsterisk(name="asterisk1")
    watch, _ = await watch_with(asterisk, journey, "asterisk1-1700.1", "asterisk2-1700.2")
    asterisk.started = "later"

    await watch.after_relogin()
    await watch.recorder.drain()

    assert len(await lost(journey, "+79990001")) == 1 and await lost(journey, "+79990002") == []


async def test_an_asterisk_still_booting_is_asked_again() -> None:
    journey, asterisk = MemoryJourney(), FakeAsterisk()
    watch, republish = await watch_with(asterisk, journey, "1700.1")
    asterisk.started, asterisk.not_ready = "later", 3

    await watch.after_relogin()

    assert watch.restarts == 1 and republish.calls == 1
