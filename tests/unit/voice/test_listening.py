"""Listening to one spoken answer: barge-in, the end of speech, an empty final, a recogniser that fails."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ivr.voice.ports import ChannelFailed
from ivr.voice.speech.listening import open_listening
from ivr.voice.speech.recogniser import RecogniserDown, Reply

RATE = 16000
LOUD = (b"\x00\x40" * 320)   # a 20 ms frame near -6 dBFS
QUIET = (b"\x00\x00" * 320)  # a 20 ms frame of silence


class ScriptedStream:
    """Answers each 100 ms chunk with the next scripted reply (then with empty partials)."""

    def __init__(self, replies: Sequence[Reply | Exception], final: Reply) -> None:
        self.replies = list(replies)
        self.final = final
        self.fed = 0
        self.closed = False

    async def feed(self, pcm: bytes) -> Reply:
        self.fed += 1
        reply = self.replies.pop(0) if self.replies else Reply("", False)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def finish(self) -> Reply:
        return self.final

    async def close(self) -> None:
        self.closed = True


class ScriptedRecogniser:
    def __init__(self, stream: ScriptedStream | None = None, down: bool = False) -> None:
        self.stream = stream
        self.down = down
        self.words: tuple[str, ...] = ()

    async def open(self, words: Sequence[str], rate: int) -> ScriptedStream:
        if self.down or self.stream is None:
            raise RecogniserDown("connection refused")
        self.words = tuple(words)
        return self.stream


class FakeAudio:
    rate = RATE

    def __init__(self, frames: Sequence[bytes], broken: bool = False) -> None:
        self.frames = list(frames)
        self.broken = broken
        self.stopped = False

    async def listen(self) -> asyncio.Queue[bytes | None]:
        if self.broken:
            raise ChannelFailed("externalMedia refused")
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        for frame in self.frames:
            queue.put_nowait(frame)
        return queue

    def stop_listening(self, frames: asyncio.Queue[bytes | None]) -> None:
        self.stopped = True

    async def close(self) -> None:
        pass


def frames(loud_s: float, quiet_s: float) -> list[bytes]:
    return [LOUD] * int(loud_s * 50) + [QUIET] * int(quiet_s * 50)


async def test_the_first_partial_interrupts_the_prompt_and_the_final_result_is_what_was_heard():
    stream = ScriptedStream([Reply("", False), Reply("로밍", False), Reply("로밍", True, 0.9)], Reply("", True))
    listening = await open_listening(ScriptedRecogniser(stream), FakeAudio(frames(1, 1)), ["로밍", "서비스"], 0.6)

    heard = await listening.result()
    await listening.close()

    assert listening.interrupt.is_set() and listening.speech_started
    assert (heard.text, heard.confidence, heard.from_partial) == ("로밍", 0.9, False)
    assert stream.closed


async def test_the_grammar_is_exactly_the_menus_words():
    recogniser = ScriptedRecogniser(ScriptedStream([Reply("x", True, 1.0)], Reply("", True)))
    listening = await open_listening(recogniser, FakeAudio(frames(1, 0)), ["데이터", "전화"], 0.6)
    await listening.result()
    await listening.close()

    assert recogniser.words == ("데이터", "전화")


async def test_quiet_after_speech_ends_the_utterance_without_waiting_for_the_recogniser_endpoint():
    stream = ScriptedStream([Reply("전화", False)] * 5, Reply("전화", True, 0.8))
    listening = await open_listening(ScriptedRecogniser(stream), FakeAudio(frames(0.5, 3)), ["전화"], 0.6)

    heard = await listening.result()
    await listening.close()

    assert heard.text == "전화"
    assert stream.fed <= 5 + 7  # half a second of speech, then 0.6 s of quiet, not the whole 3 s


async def test_an_empty_final_after_good_partials_keeps_the_last_partial():
    stream = ScriptedStream([Reply("서비스", False)] * 3, Reply("", True))
    listening = await open_listening(ScriptedRecogniser(stream), FakeAudio(frames(0.3, 1)), ["서비스"], 0.4)

    heard = await listening.result()
    await listening.close()

    assert (heard.text, heard.from_partial) == ("서비스", True)
    assert heard.confidence == 0.5


async def test_a_recogniser_that_fails_mid_utterance_interrupts_and_says_so():
    stream = ScriptedStream([Reply("로", False), RecogniserDown("the recogniser closed the stream")], Reply("", True))
    listening = await open_listening(ScriptedRecogniser(stream), FakeAudio(frames(1, 1)), ["로밍"], 0.6)

    await asyncio.wait_for(listening.interrupt.wait(), 1)
    with pytest.raises(RecogniserDown, match="closed"):
        await listening.result()
    await listening.close()


async def test_a_recogniser_that_is_down_is_known_before_the_prompt_starts():
    with pytest.raises(RecogniserDown):
        await open_listening(ScriptedRecogniser(down=True), FakeAudio([]), ["로밍"], 0.6)


async def test_audio_that_cannot_be_set_up_closes_the_recogniser_stream():
    stream = ScriptedStream([], Reply("", True))
    with pytest.raises(ChannelFailed):
        await open_listening(ScriptedRecogniser(stream), FakeAudio([], broken=True), ["로밍"], 0.6)
    assert stream.closed


async def test_closing_before_anything_was_said_stops_the_audio_for_this_listener():
    audio = FakeAudio([])
    listening = await open_listening(ScriptedRecogniser(ScriptedStream([], Reply("", True))), audio, ["로밍"], 0.6)

    await listening.close()

    assert audio.stopped and not listening.interrupt.is_set()
