"""The ARI driver against a scripted Asterisk: calls, prompts, keys, and what happens after a lost link."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from ivr.journey.memory import MemoryJourney
from ivr.voice.ami import AmiUnavailable
from ivr.voice.ari.app import ORPHAN_REASON, StasisApp
from ivr.voice.ari.audio import aux_owner
from ivr.voice.ari.call import END, AriCall, AriHangup
from ivr.voice.ari.client import AriDisconnected, AriError, AriNotFound
from ivr.voice.ports import SPOKEN, VoiceChannel


class FakeAri:
    """Records every REST request; answers 404 for the paths in ``gone``.

    The first ``cut`` requests are recorded (Asterisk got them) but their answers are
    lost with the link, and ``refuse`` answers every request with that HTTP status."""

    def __init__(self, app_channels: list[str] | None = None, gone: tuple[str, ...] = (), *,
                 cut: int = 0, refuse: int = 0, names: Mapping[str, str] | None = None) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.app_channels = app_channels or []
        self.names = dict(names or {})
        self.gone = gone
        self.cut = cut
        self.refuse = refuse

    async def request(self, method: str, path: str, params: Mapping[str, object] | None = None,
                      body: Mapping[str, Any] | None = None) -> Any:
        self.requests.append((method, path, dict(params or {})))
        if self.cut:
            self.cut -= 1
            raise AriError(f"{method} {path}: ARI not reachable (Server disconnected)")
        if self.refuse:
            raise AriError(f"{method} {path}: HTTP {self.refuse}", self.refuse)
        if any(path.startswith(g) for g in self.gone):
            raise AriNotFound(f"{method} {path}: not found", 404)
        if path.startswith("applications/"):
            return {"name": "ivr", "channel_ids": self.app_channels}
        if method == "GET" and path.startswith("channels/"):
            channel_id = path.split("/")[1]
            return {"id": channel_id, "name": self.names.get(channel_id, "")}
        return None

    async def get(self, path: str, **params: object) -> Any:
        return await self.request("GET", path, params)

    async def post(self, path: str, **params: object) -> Any:
        return await self.request("POST", path, params)

    async def delete(self, path: str, **params: object) -> Any:
        return await self.request("DELETE", path, params)

    async def events(self, app: str) -> AsyncIterator[dict[str, Any]]:
        raise AriDisconnected("no events in this test")
        yield {}

    def paths(self, method: str) -> list[str]:
        return [p for m, p, _ in self.requests if m == method]


class Link:
    """The application's events link, down until the test brings it back."""

    def __init__(self) -> None:
        self.up = asyncio.Event()

    async def link_up(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self.up.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


async def never(call: VoiceChannel) -> None:
    pytest.fail("this route must not run")


CHANNEL = {"id": "1700000000.1", "caller": {"number": "79991234567", "name": "Anna"}, "language": "ko"}


def start(app: StasisApp, args: list[str]) -> None:
    app.dispatch({"type": "StasisStart", "channel": CHANNEL, "args": args})


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_call_entering_the_application_runs_its_route_and_then_continues_in_the_dialplan():
    ari, seen = FakeAri(), []

    async def selftest(call: VoiceChannel) -> None:
        seen.append(call.info)

    app = StasisApp(ari, "ivr", {"call": never, "selftest": selftest}, MemoryJourney())
    start(app, ["90002", "selftest"])
    await asyncio.gather(*app.tasks)

    assert [(i.call_id, i.caller_number, i.caller_name, i.dnis, i.driver) for i in seen] == [
        ("1700000000.1", "79991234567", "Anna", "90002", "ari")]
    assert ari.paths("POST")[-1] == "channels/1700000000.1/continue"
    assert ("POST", "channels/1700000000.1/variable", {"variable": "TIMEOUT(absolute)", "value": "0"}) in ari.requests


async def test_our_own_snoop_and_media_channels_never_start_a_session():
    ari = FakeAri()
    app = StasisApp(ari, "ivr", {"call": never}, MemoryJourney())
    app.dispatch({"type": "StasisStart", "channel": {"id": "ivr-aux-1.1-snoop"}, "args": ["ivr-snoop"]})

    await asyncio.wait_for(app.in_application("ivr-aux-1.1-snoop"), 1)
    assert app.calls == {} and app.tasks == set()


class Redirects:
    """AMI Redirect as the application sees it: records each move, or fails like a dead AMI."""

    def __init__(self, fail: bool = False) -> None:
        self.moves: list[tuple[str, str, str, str]] = []
        self.fail = fail

    async def __call__(self, channel: str, context: str, extension: str, priority: str) -> None:
        if self.fail:
            raise AmiUnavailable("AMI is not connected")
        self.moves.append((channel, context, extension, priority))


async def test_after_a_reconnect_a_channel_nobody_here_runs_is_redirected_to_the_fallback_queue_and_journaled():
    ari, journey, redirects = FakeAri(app_channels=["1700000000.9"], names={"1700000000.9": "PJSIP/t-9"}), \
        MemoryJourney(), Redirects()
    app = StasisApp(ari, "ivr", {"call": never}, journey, redirect=redirects)

    await app._readopt()

    assert redirects.moves == [("PJSIP/t-9", "ivr-entry", ORPHAN_REASON, "1")]
    assert ari.paths("POST") == []  # ARI's commands would wait behind the dead controller's prompt
    events = await journey.recent("call:1700000000.9")
    assert [(e.type, e.data["outcome"], e.data["via"]) for e in events] == [
        ("call_readopted", "fallback", "redirect")]


@pytest.mark.parametrize("redirects", [None, Redirects(fail=True)], ids=["no AMI", "AMI down"])
async def test_without_ami_an_orphan_is_continued_to_the_fallback_extension_by_ari(redirects):
    ari, journey = FakeAri(app_channels=["1700000000.9"], names={"1700000000.9": "PJSIP/t-9"}), MemoryJourney()
    app = StasisApp(ari, "ivr", {"call": never}, journey, redirect=redirects)

    await app._readopt()
    await asyncio.gather(*app._chores)

    assert ("POST", "channels/1700000000.9/continue",
            {"context": "ivr-entry", "extension": ORPHAN_REASON, "priority": 1}) in ari.requests
    events = await journey.recent("call:1700000000.9")
    assert [(e.type, e.data["via"]) for e in events] == [("call_readopted", "continue")]


async def test_after_a_reconnect_a_call_that_left_meanwhile_ends_its_session():
    ari = FakeAri(app_channels=[])
    ended = asyncio.Event()

    async def flow(call: VoiceChannel) -> None:
        try:
            await call.wait_for_digit(60_000)
        except AriHangup:
            ended.set()
            raise

    app = StasisApp(ari, "ivr", {"call": flow}, MemoryJourney())
    start(app, ["7000"])
    await settle()
    await app._readopt()

    await asyncio.wait_for(ended.wait(), 1)
    await asyncio.gather(*app.tasks)
    assert app.calls == {}
    assert "channels/1700000000.1/continue" not in ari.paths("POST")  # nothing to send on: it is gone


async def test_after_a_reconnect_a_prompt_that_finished_unseen_counts_as_finished():
    ari = FakeAri(gone=("playbacks/",))
    call = AriCall(ari, CHANNEL, "7000")
    app = StasisApp(ari, "ivr", {"call": never}, MemoryJourney())
    app.connections = 2
    playing = asyncio.create_task(call.play_file("greeting", ""))
    await settle()

    await app._resume(call)

    assert await asyncio.wait_for(playing, 1) == ""
    assert call.take_notes() == [("call_readopted", {"outcome": "resumed", "reason": "events link restored"})]


async def test_a_key_the_prompt_listens_for_stops_it_and_is_returned():
    ari = FakeAri()
    call = AriCall(ari, CHANNEL, "7000")
    playing = asyncio.create_task(call.play_file("menu", "12"))
    await settle()
    call.deliver({"type": "ChannelDtmfReceived", "digit": "9"})  # not one of the menu's keys: ignored
    call.deliver({"type": "ChannelDtmfReceived", "digit": "2"})

    assert await asyncio.wait_for(playing, 1) == "2"
    assert ari.paths("DELETE")[-1].startswith("playbacks/ivr-pb-")
    method, path, params = ari.requests[0]
    assert (method, path.rsplit("/", 1)[0], params["lang"]) == ("POST", "channels/1700000000.1/play", "ko")


async def test_speech_stops_the_prompt_and_says_so():
    ari = FakeAri()
    call = AriCall(ari, CHANNEL, "7000")
    spoken = asyncio.Event()
    playing = asyncio.create_task(call.play_file("menu", "12", spoken))
    await settle()
    spoken.set()

    assert await asyncio.wait_for(playing, 1) == SPOKEN
    assert ari.paths("DELETE")[-1].startswith("playbacks/")


async def test_a_key_pressed_between_prompts_waits_for_the_next_read():
    call = AriCall(FakeAri(), CHANNEL, "7000")
    call.deliver({"type": "ChannelDtmfReceived", "digit": "0"})

    assert await call.wait_for_digit(1000) == "0"
    assert await call.wait_for_digit(10) == ""


async def test_the_end_of_the_call_ends_any_wait():
    call = AriCall(FakeAri(), CHANNEL, "7000")
    waiting = asyncio.create_task(call.wait_for_digit(60_000))
    await settle()
    call.deliver({"type": END, "reason": "StasisEnd"})

    with pytest.raises(AriHangup):
        await asyncio.wait_for(waiting, 1)


async def test_a_channel_that_is_gone_is_a_hangup_not_an_error():
    call = AriCall(FakeAri(gone=("channels/",)), CHANNEL, "7000")

    with pytest.raises(AriHangup):
        await call.answer()


@pytest.mark.parametrize(("channel_id", "owner"), [
    ("ivr-aux-1700000000.1-snoop", "1700000000.1"),
    ("ivr-aux-ivrcall-8775e45ad4f7-ivr-media", "ivrcall-8775e45ad4f7-ivr"),  # a call id with dashes
    ("1700000000.1", None),
])
def test_our_snoop_and_media_channels_name_the_call_they_belong_to(channel_id, owner):
    assert aux_owner(channel_id) == owner


async def test_after_a_reconnect_a_snoop_left_by_a_call_nobody_runs_is_hung_up_not_routed():
    ari = FakeAri(app_channels=["ivr-aux-1700000000.7-snoop"])
    app = StasisApp(ari, "ivr", {"call": never}, MemoryJourney())

    await app._readopt()

    assert ari.paths("DELETE") == ["channels/ivr-aux-1700000000.7-snoop"]
    assert "channels/ivr-aux-1700000000.7-snoop/continue" not in ari.paths("POST")


async def test_a_request_whose_answer_was_lost_with_the_link_is_sent_again_once_the_link_is_back():
    ari, link = FakeAri(cut=1), Link()
    call = AriCall(ari, CHANNEL, "7000", link=link)
    answering = asyncio.create_task(call.answer())
    await asyncio.sleep(0.2)
    assert not answering.done()  # waiting for the link, not failing the call

    link.up.set()

    await asyncio.wait_for(answering, 2)
    assert ari.paths("POST") == ["channels/1700000000.1/answer"] * 2


@pytest.mark.parametrize(("gone", "plays"), [
    ((), 1),               # the first play reached Asterisk: it is not queued a second time
    (("playbacks/",), 2),  # it never got there: it is sent again
])
async def test_a_prompt_cut_by_a_lost_link_is_played_once(gone, plays):
    ari, link = FakeAri(cut=1, gone=gone), Link()
    link.up.set()
    call = AriCall(ari, CHANNEL, "7000", link=link)
    playing = asyncio.create_task(call.play_file("menu", "1"))
    await asyncio.sleep(0.2)
    call.deliver({"type": "ChannelDtmfReceived", "digit": "1"})

    assert await asyncio.wait_for(playing, 2) == "1"
    assert len([p for p in ari.paths("POST") if "/play/" in p]) == plays


async def test_a_link_that_stays_away_longer_than_the_call_would_wait_fails_the_request():
    call = AriCall(FakeAri(cut=100), CHANNEL, "7000", link=Link(), outage_s=0.2)

    with pytest.raises(AriError, match="not reachable"):
        await asyncio.wait_for(call.answer(), 2)


async def test_a_refusal_from_asterisk_is_not_sent_again():
    ari, link = FakeAri(refuse=400), Link()
    link.up.set()
    call = AriCall(ari, CHANNEL, "7000", link=link)

    with pytest.raises(AriError, match="HTTP 400"):
        await call.answer()
    assert len(ari.requests) == 1


async def test_a_call_that_ends_while_its_request_waits_for_the_link_is_a_hangup():
    call = AriCall(FakeAri(cut=1), CHANNEL, "7000", link=Link())
    answering = asyncio.create_task(call.answer())
    await asyncio.sleep(0.1)

    call.deliver({"type": END, "reason": "gone after reconnect"})

    with pytest.raises(AriHangup):
        await asyncio.wait_for(answering, 2)


class SwallowingEvents(FakeAri):
    """An events link that stays open after CONNECTED, as Asterisk's does."""

    async def events(self, app: str) -> AsyncIterator[dict[str, Any]]:
        from ivr.voice.ari.client import CONNECTED

        yield {"type": CONNECTED}
        await asyncio.Event().wait()
        yield {}


async def test_a_cancellation_swallowed_during_the_connect_hook_still_stops_the_application():
    hook_entered = asyncio.Event()

    async def swallowing_hook() -> None:  # as asyncio.wait_for on Python 3.11 may, in a race
        hook_entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return

    app = StasisApp(SwallowingEvents(), "ivr", {"call": never}, MemoryJourney(), on_connect=swallowing_hook)
    task = asyncio.create_task(app.run())
    await asyncio.wait_for(hook_entered.wait(), 1)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)
