"""The recogniser as the voice flow sees it: a stream per utterance, partials, one result.

Any server that speaks the Vosk WebSocket protocol can stand behind it (our own embedded
``ivr recogniser`` or alphacep's vosk-server); :mod:`ivr.voice.speech.vosk_client` is the
one implementation. A recogniser that is down, slow or killed surfaces as
:class:`RecogniserDown`, quickly, so the caller is offered keys instead of silence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class RecogniserDown(Exception):
    """The recogniser cannot be reached, answered too late, or went away mid-utterance."""


@dataclass(frozen=True, slots=True)
class Reply:
    """The recogniser's answer to one chunk of audio: a partial hypothesis, or a result at an endpoint."""

    text: str
    final: bool
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class Heard:
    """What the caller said: the transcript and the recogniser's confidence (0..1).

    ``from_partial`` marks a result taken from the last partial hypothesis because the
    final one came back empty (a known Vosk behaviour with short grammars).
    """

    text: str
    confidence: float
    from_partial: bool = False
    #: loop time when the last voiced 100 ms chunk arrived: the end of speech, for latency figures
    speech_ended_at: float | None = None


class RecognitionStream(Protocol):
    async def feed(self, pcm: bytes) -> Reply: ...

    async def finish(self) -> Reply: ...

    async def close(self) -> None: ...


class Recogniser(Protocol):
    async def open(self, words: Sequence[str], rate: int) -> RecognitionStream:
        """A stream restricted to ``words`` (plus ``[unk]``); raises RecogniserDown."""


def reply_from(message: dict[str, object]) -> Reply:
    """A Vosk JSON message as a Reply: ``{"partial": ...}`` or ``{"text": ..., "result": [...]}``."""
    if "partial" in message:
        return Reply(str(message.get("partial") or ""), final=False)
    words = message.get("result") or []
    confs = [float(w.get("conf", 0.0)) for w in words if isinstance(w, dict)] if isinstance(words, list) else []
    text = str(message.get("text") or "")
    # The utterance is as sure as its least sure word: one doubtful word is a doubtful answer.
    return Reply(text, final=True, confidence=min(confs) if confs else (1.0 if text else 0.0))
