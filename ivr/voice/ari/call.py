"""One call in the Stasis application, offered to the engine flow as a VoiceChannel.

The application's event loop hands this call its own events (DTMF, playback finished,
the end of the call); every prompt and wait here consumes them. A digit pressed during a
prompt that is not listening for it is dropped, as STREAM FILE drops it; a digit pressed
between prompts waits for the next ``wait_for_digit``. A channel that is gone (404, or
StasisEnd) ends the session with :class:`AriHangup`, like AGI's 511.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any

from ivr.voice.ari.client import AriError, AriNotFound, AriRest
from ivr.voice.ports import SPOKEN, CallAudio, CallEnded, CallInfo

log = logging.getLogger(__name__)

END = "IvrCallEnded"          # our own event: StasisEnd, hangup or destruction seen
RESUMED = "IvrLinkResumed"     # our own event: the events socket came back while this call waited


class AriHangup(CallEnded):
    """The channel left the application or no longer exists."""


class AriCall:
    def __init__(self, client: AriRest, channel: dict[str, Any], dnis: str, audio: CallAudio | None = None) -> None:
        self.client = client
        self.id = str(channel["id"])
        caller = channel.get("caller") or {}
        self._info = CallInfo(call_id=self.id, caller_number=str(caller.get("number") or ""),
                              caller_name=str(caller.get("name") or ""), dnis=dnis, driver="ari")
        self.language = str(channel.get("language") or "en")
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.ended = False
        self.playing: str | None = None  # the playback id being waited for (checked after a lost link)
        self._audio = audio
        self._notes: list[tuple[str, dict[str, object]]] = []

    @property
    def info(self) -> CallInfo:
        return self._info

    # -- from the application's event loop ---------------------------------------------
    def deliver(self, event: dict[str, Any]) -> None:
        if event.get("type") == END:
            self.ended = True
        self._events.put_nowait(event)

    def remember(self, kind: str, data: dict[str, object]) -> None:
        """Something the driver did for this call, for the journey (see ``take_notes``)."""
        self._notes.append((kind, data))

    def take_notes(self) -> list[tuple[str, dict[str, object]]]:
        notes, self._notes = self._notes, []
        return notes

    # -- VoiceChannel ----------------------------------------------------------------------
    async def _rest(self, method: str, path: str, **params: object) -> Any:
        if self.ended:
            raise AriHangup(f"call {self.id} already ended")
        try:
            return await self.client.request(method, path, params)
        except AriNotFound:
            self.ended = True
            raise AriHangup(f"channel {self.id} is gone") from None

    async def answer(self) -> None:
        await self._rest("POST", f"channels/{self.id}/answer")

    async def note(self, message: str) -> None:
        log.info("%s", message)

    async def set_variable(self, name: str, value: object) -> None:
        if name == "CHANNEL(language)":
            self.language = str(value)
        await self._rest("POST", f"channels/{self.id}/variable", variable=name, value=str(value))

    async def play_file(self, name: str, escape: str, barge_in: asyncio.Event | None = None) -> str:
        return await self._play([f"sound:{name}"], escape, barge_in)

    async def say_number(self, number: int, escape: str, barge_in: asyncio.Event | None = None) -> str:
        return await self._play([f"number:{number}"], escape, barge_in)

    async def say_digits(self, digits: str, escape: str, barge_in: asyncio.Event | None = None) -> str:
        return await self._play([f"digits:{digits}"], escape, barge_in)

    async def say_date(self, day: dt.date, escape: str, barge_in: asyncio.Event | None = None) -> str:
        # As SAY DATETIME "dBY" says it: the ordinal day, the month's name, the year.
        return await self._play([f"sound:digits/h-{day.day}", f"sound:digits/mon-{day.month - 1}",
                                 f"number:{day.year}"], escape, barge_in)

    async def wait_for_digit(self, timeout_ms: int, barge_in: asyncio.Event | None = None) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        while True:
            event = await self._next(deadline - loop.time(), barge_in)
            if event is None:
                return ""
            if event is _SPOKEN:
                return SPOKEN
            if event.get("type") == "ChannelDtmfReceived":
                return str(event.get("digit", ""))

    def audio(self) -> CallAudio | None:
        return self._audio

    # -- inside ------------------------------------------------------------------------------
    async def _play(self, media: list[str], escape: str, barge_in: asyncio.Event | None) -> str:
        if barge_in is not None and barge_in.is_set():
            return SPOKEN
        playback = f"ivr-pb-{uuid.uuid4().hex[:16]}"
        await self._rest("POST", f"channels/{self.id}/play/{playback}", media=media, lang=self.language)
        self.playing = playback
        try:
            while True:
                event = await self._next(None, barge_in)
                if event is _SPOKEN:
                    await self._stop(playback)
                    return SPOKEN
                assert event is not None
                kind = event.get("type")
                if kind == "ChannelDtmfReceived":
                    digit = str(event.get("digit", ""))
                    if digit and digit in escape:
                        await self._stop(playback)
                        return digit
                elif kind in ("PlaybackFinished", "PlaybackFailed") and (event.get("playback") or {}).get(
                        "id") == playback:
                    return ""
        finally:
            self.playing = None

    async def _stop(self, playback: str) -> None:
        try:
            await self.client.delete(f"playbacks/{playback}")
        except AriError:
            pass  # already finished

    async def _next(self, timeout: float | None, barge_in: asyncio.Event | None) -> dict[str, Any] | None:
        """The next event for this call; None at the timeout, _SPOKEN on barge-in; AriHangup at the end."""
        if timeout is not None and timeout <= 0:
            timeout = 0.0
        getter = asyncio.ensure_future(self._events.get())
        waiters: set[asyncio.Future[Any]] = {getter}
        speech = asyncio.ensure_future(barge_in.wait()) if barge_in is not None else None
        if speech is not None:
            waiters.add(speech)
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if speech is not None:
                speech.cancel()
        if getter in done:
            event = getter.result()
            if event.get("type") == END:
                raise AriHangup(f"call {self.id} ended: {event.get('reason', 'hangup')}")
            return event
        getter.cancel()
        if speech is not None and speech in done:
            return _SPOKEN
        return None


_SPOKEN: dict[str, Any] = {"type": "IvrSpoken"}
