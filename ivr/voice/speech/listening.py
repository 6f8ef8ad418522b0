"""Listening to one spoken answer on a call: barge-in, end of speech, and failure, all timed by the audio.

While the prompt plays, the caller's audio (theirs only: a snoop of what they send) goes
to a recogniser stream restricted to the menu's words. The first non-empty partial
hypothesis sets :attr:`Listening.interrupt`, which stops the prompt (barge-in). The
utterance ends at the recogniser's own endpoint, or after ``end_of_speech_s`` of quiet
audio, or at ``MAX_UTTERANCE_S``; the result is the final hypothesis, or the last partial
when the final came back empty. A recogniser that fails sets ``interrupt`` too, and
:meth:`Listening.result` raises :class:`RecogniserDown`, so the flow tells the caller to
use the keys within one reply timeout, never minutes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from ivr.voice.ports import CallAudio, ChannelFailed
from ivr.voice.speech.recogniser import Heard, Recogniser, RecogniserDown, RecognitionStream

log = logging.getLogger(__name__)

CHUNK_S = 0.1           # audio sent to the recogniser per request
MAX_UTTERANCE_S = 8.0   # nobody names a menu option for longer
SILENCE_DBFS = -40.0    # below this a chunk counts as quiet (telephone line noise sits near -60)
AUDIO_GAP_S = 2.0       # no frames at all for this long: the audio path is broken


@dataclass(frozen=True, slots=True)
class ListenRequest:
    words: tuple[str, ...]
    end_of_speech_s: float


def level_dbfs(pcm: bytes) -> float:
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) // 2 * 2])
    if not samples:
        return -120.0
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    return 20 * math.log10(rms / 32768) if rms > 0 else -120.0


class Listening:
    """One utterance being recognised; start it with :meth:`start`, always :meth:`close` it."""

    def __init__(self, recogniser: Recogniser, audio: CallAudio, request: ListenRequest) -> None:
        self.recogniser = recogniser
        self.audio = audio
        self.request = request
        self.interrupt = asyncio.Event()
        self.speech_started = False
        self._outcome: asyncio.Future[Heard] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self._frames: asyncio.Queue[bytes | None] | None = None

    async def start(self) -> None:
        """Open the recogniser stream and the audio; raises RecogniserDown or ChannelFailed."""
        stream = await self.recogniser.open(self.request.words, self.audio.rate)
        try:
            self._frames = await self.audio.listen()
        except BaseException:
            await stream.close()
            raise
        self._task = asyncio.create_task(self._run(stream, self._frames))

    async def result(self) -> Heard:
        """What was said; raises RecogniserDown when the recogniser failed."""
        return await asyncio.shield(self._outcome)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._frames is not None:
            self.audio.stop_listening(self._frames)
        if not self._outcome.done():
            self._outcome.cancel()

    def _fail(self, exc: Exception) -> None:
        if not self._outcome.done():
            self._outcome.set_exception(exc)
        self.interrupt.set()

    async def _run(self, stream: RecognitionStream, frames: asyncio.Queue[bytes | None]) -> None:
        try:
            heard = await self._recognise(stream, frames)
            if not self._outcome.done():
                self._outcome.set_result(heard)
        except (RecogniserDown, ChannelFailed) as exc:
            log.warning("speech recognition failed: %s", exc)
            self._fail(exc if isinstance(exc, RecogniserDown) else RecogniserDown(str(exc)))
        finally:
            try:
                await stream.close()
            except Exception:  # noqa: BLE001 - the stream is finished either way
                pass

    async def _recognise(self, stream: RecognitionStream, frames: asyncio.Queue[bytes | None]) -> Heard:
        rate = self.audio.rate
        chunk_bytes = int(rate * CHUNK_S) * 2
        buf = bytearray()
        heard_s = quiet_since = 0.0
        voiced_at: float | None = None
        clock = asyncio.get_running_loop().time
        last_partial = ""
        while True:
            try:
                async with asyncio.timeout(AUDIO_GAP_S):
                    frame = await frames.get()
            except TimeoutError:
                raise RecogniserDown(f"no caller audio for {AUDIO_GAP_S:g} s") from None
            if frame is None:
                break
            buf += frame
            if len(buf) < chunk_bytes:
                continue
            chunk, buf = bytes(buf), bytearray()
            heard_s += len(chunk) / 2 / rate
            if level_dbfs(chunk) > SILENCE_DBFS:
                quiet_since = heard_s
                voiced_at = clock()
            reply = await stream.feed(chunk)
            if reply.text and not reply.final:
                last_partial = reply.text
                if not self.speech_started:
                    quiet_since = heard_s
                    self._started()
            if reply.final and reply.text:
                self._started()
                return Heard(reply.text, reply.confidence, speech_ended_at=voiced_at)
            if self.speech_started and (heard_s - quiet_since >= self.request.end_of_speech_s
                                        or heard_s >= MAX_UTTERANCE_S):
                break
        final = await stream.finish()
        if final.text:
            return Heard(final.text, final.confidence, speech_ended_at=voiced_at)
        # Vosk may end a short grammar utterance with an empty result after good partials.
        return Heard(last_partial, 0.0 if not last_partial else _PARTIAL_CONFIDENCE, from_partial=bool(last_partial),
                     speech_ended_at=voiced_at)

    def _started(self) -> None:
        if not self.speech_started:
            self.speech_started = True
            self.interrupt.set()


# A partial has no per-word confidence; it is trusted just enough to pass a default
# min_confidence of 0.5 only when the menu author has not asked for more.
_PARTIAL_CONFIDENCE = 0.5


async def open_listening(recogniser: Recogniser, audio: CallAudio, words: Sequence[str],
                         end_of_speech_s: float) -> Listening:
    listening = Listening(recogniser, audio, ListenRequest(tuple(words), end_of_speech_s))
    await listening.start()
    return listening

