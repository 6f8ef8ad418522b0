"""The voice flow with spoken input, on a scripted channel and recogniser: what the caller
hears and what the journey keeps when speech works, is doubtful, or fails."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from ivr.flow import load_tree
from ivr.flow.actions import Play
from ivr.journey.memory import MemoryJourney
from ivr.tools.simulate import DemoActions
from ivr.voice.engine_flow import EngineFlow
from ivr.voice.ports import SPOKEN, CallAudio, CallInfo
from ivr.voice.prompt_files import PromptFiles
from ivr.voice.speaker import Speaker
from ivr.voice.speech.recogniser import RecogniserDown, Reply
from tests.unit.voice.test_listening import LOUD, QUIET, ScriptedRecogniser, ScriptedStream

SPEECH = Path(__file__).resolve().parents[2] / "data" / "speech"


class Tree:
    def __init__(self) -> None:
        self.tree = load_tree(SPEECH / "menus", numbers=SPEECH / "numbers.yaml")

    def current(self):
        return self.tree


class Audio:
    rate = 16000

    async def listen(self) -> asyncio.Queue[bytes | None]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        for frame in [LOUD] * 25 + [QUIET] * 50:
            queue.put_nowait(frame)
        return queue

    def stop_listening(self, frames: asyncio.Queue[bytes | None]) -> None:
        pass

    async def close(self) -> None:
        pass


class Channel:
    """A caller who speaks over every listening prompt and presses ``keys`` when asked for a key."""

    def __init__(self, keys: str = "") -> None:
        self._info = CallInfo("call-1", "79990001122", "", "7000", "ari")
        self.keys = list(keys)
        self.variables: dict[str, object] = {}
        self.prompts: list[str] = []

    @property
    def info(self) -> CallInfo:
        return self._info

    async def answer(self) -> None: ...

    async def note(self, message: str) -> None: ...

    async def set_variable(self, name: str, value: object) -> None:
        self.variables[name] = value

    async def play_file(self, name: str, escape: str, barge_in: asyncio.Event | None = None) -> str:
        if barge_in is not None:
            try:
                await asyncio.wait_for(barge_in.wait(), 1)
                return SPOKEN
            except TimeoutError:
                pass
        return ""

    async def say_number(self, number, escape, barge_in=None) -> str:
        return ""

    async def say_digits(self, digits, escape, barge_in=None) -> str:
        return ""

    async def say_date(self, day, escape, barge_in=None) -> str:
        return ""

    async def wait_for_digit(self, timeout_ms: int, barge_in: asyncio.Event | None = None) -> str:
        if barge_in is not None and barge_in.is_set():
            return SPOKEN
        return self.keys.pop(0) if self.keys else ""

    def audio(self) -> CallAudio | None:
        return Audio()

    def take_notes(self) -> list[tuple[str, dict[str, object]]]:
        return []


class HeardSpeaker(Speaker):
    """Keeps the text of every prompt and plays it as one file, so barge-in stops it."""

    def __init__(self) -> None:
        super().__init__(PromptFiles(Path("/nonexistent")))
        self.heard: list[str] = []

    async def play(self, channel, play: Play, escape_digits: str, barge_in: asyncio.Event | None = None) -> str:
        self.heard.append(" ".join(getattr(p, "text", "") for p in play.parts))
        return await channel.play_file(play.prompt_id, escape_digits, barge_in)


class Recognisers:
    """A fresh scripted stream for every answer, each giving ``reply``."""

    def __init__(self, reply: Reply | None) -> None:
        self.reply = reply
        self.opened = 0

    async def open(self, words: Sequence[str], rate: int) -> ScriptedStream:
        self.opened += 1
        if self.reply is None:
            raise RecogniserDown("connection refused")
        return await ScriptedRecogniser(ScriptedStream([Reply(self.reply.text, False), self.reply],
                                                       Reply("", True))).open(words, rate)


async def call(reply: Reply | None, keys: str = "") -> tuple[Channel, HeardSpeaker, list, Recognisers]:
    journey, speaker, channel, recognisers = MemoryJourney(), HeardSpeaker(), Channel(keys), Recognisers(reply)
    flow = EngineFlow(Tree(), speaker, DemoActions(), journey, recogniser=recognisers,
                      speech_languages=frozenset({"ko"}))
    await flow(channel)
    return channel, speaker, await journey.interaction_events("call-1"), recognisers


async def test_a_confident_answer_takes_its_branch_and_the_journey_keeps_what_was_said():
    channel, _, events, _ = await call(Reply("로밍", True, 0.9))

    assert channel.variables["IVR_PATH"] == "main_ko>roaming_ko"
    heard = [e.data for e in events if e.type == "speech_heard"]
    assert [(h["text"], h["confidence"], h["barge_in"]) for h in heard] == [("로밍", 0.9, True)]


async def test_two_doubtful_answers_make_the_menu_ask_for_keys_and_a_key_takes_the_branch():
    channel, speaker, events, recognisers = await call(Reply("로밍", True, 0.2), keys="0")

    assert channel.variables["IVR_PATH"] == "main_ko>agent_ko"
    assert recognisers.opened == 2
    assert [e.data["reason"] for e in events if e.type == "speech_unavailable"] == ["the recogniser was unsure twice"]
    assert any("키패드" in line for line in speaker.heard)


async def test_a_recogniser_that_is_down_is_announced_once_and_the_call_goes_on_with_keys():
    channel, speaker, events, recognisers = await call(None, keys="3")

    assert channel.variables["IVR_PATH"] == "main_ko>roaming_ko"
    assert recognisers.opened == 1
    assert [e.type for e in events].count("speech_unavailable") == 1
    assert sum("음성 인식을 사용할 수 없습니다" in line for line in speaker.heard) == 1


async def test_a_call_in_a_language_the_model_does_not_understand_is_never_listened_to():
    journey, channel, recognisers = MemoryJourney(), Channel("3"), Recognisers(Reply("로밍", True, 0.9))
    flow = EngineFlow(Tree(), HeardSpeaker(), DemoActions(), journey, recogniser=recognisers,
                      speech_languages=frozenset({"en"}))
    await flow(channel)

    assert channel.variables["IVR_PATH"] == "main_ko>roaming_ko"
    assert recognisers.opened == 0
