"""One call in the Stasis application, offered to the engine flow as a VoiceChannel.

The application's event loop hands this call its own events (DTMF, playback finished,
the end of the call); every prompt and wait here consumes them. A digit pressed during a
prompt that is not listening for it is dropped, as STREAM FILE drops it; a digit pressed
between prompts waits for the next ``wait_for_digit``. A channel that is gone (404, or
StasisEnd) ends the session with :class:`AriHangup`, like AGI's 511.

A request that cannot reach Asterisk at all (the link dropped, a pooled connection cut)
is not the end of the call: the channel is still there, in the application, with its
dead-man timer running. So the request waits for the events link to come back and is
sent again, for as long as the dead-man timer would have kept the call anyway. A prompt
is not queued twice: before sending a play again, the call asks whether the first one
reached Asterisk (ARI accepts a second playback with the same id and plays both).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any, Protocol

from ivr.voice.ari.client import AriError, AriNotFound, AriRest
from ivr.voice.ports import SPOKEN, CallAudio, CallEnded, CallInfo

log = logging.getLogger(__name__)

END = "IvrCallEnded"          # our own event: StasisEnd, hangup or destruction seen
RESUMED = "IvrLinkResumed"     # our own event: the events socket came back while this call waited
OUTAGE_S = 30.0               # how long a request waits for a lost link (the application passes its dead-man time)
RETRY_FIRST_S = 0.05          # the first pause before sending again; doubles up to RETRY_MAX_S
RETRY_MAX_S = 1.0


class AriHangup(CallEnded):
    """The channel left the application or no longer exists."""


class LinkWatch(Protocol):
    """The application's events link, as a call waiting to send a request sees it."""

    async def link_up(self, timeout_s: float) -> bool:
        """Wait until the link is up (True), or until the timeout (False)."""
        ...


class AriCall:
    def __init__(self, client: AriRest, channel: dict[str, Any], dnis: str, audio: CallAudio | None = None, *,
                 link: LinkWatch | None = None, outage_s: float = OUTAGE_S) -> None:
        self.client = client
        self.link = link
        self.outage_s = outage_s
        self.id = str(channel["id"])
        caller = channel.get("caller") or {}
        self._info = CallInfo(call_id=self.id, caller_number=str(caller.get("number") or ""),
                              caller_name=str(caller.get("name") or ""), dnis=dnis, driver="ari")
        self.language = str(channel.get("language") or "en")
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.ended = False
        self._gone = asyncio.Event()  # set with ``ended`` by the END event: wakes a request waiting for the link
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
            self._gone.set()
        self._events.put_nowait(event)

    def remember(self, kind: str, data: dict[str, object]) -> None:
        """Something the driver did for this call, for the journey (see ``take_notes``)."""
        self._notes.append((kind, data))

    def take_notes(self) -> list[tuple[str, dict[str, object]]]:
        notes, self._notes = self._notes, []
        return notes

    # -- VoiceChannel ----------------------------------------------------------------------
    async def _rest(self, method: str, path: str, params: dict[str, object] | None = None, *,
                    sent_if: str | None = None) -> Any:
        """One request for this call, sent again after a lost link (see the module's docstring).

        ``sent_if`` names a resource whose existence shows the request already reached
        Asterisk before the link dropped; it is then not sent a second time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.outage_s
        pause = RETRY_FIRST_S
        attempt = 0
        while True:
            if self.ended:
                raise AriHangup(f"call {self.id} already ended")
            try:
                if attempt and sent_if is not None and await self._exists(sent_if):
                    return None
                return await self.client.request(method, path, params)
            except AriNotFound:
                self.ended = True
                raise AriHangup(f"channel {self.id} is gone") from None
            except AriError as exc:
                remaining = deadline - loop.time()
                if exc.status or self.link is None or remaining <= 0:
                    raise  # Asterisk answered "no", or the link stayed away longer than the call would wait
                if not attempt:
                    log.warning("call %s: %s; sending again when the ARI link is back", self.id, exc)
                attempt += 1
                await asyncio.sleep(min(pause, remaining))
                pause = min(pause * 2, RETRY_MAX_S)
                await self._link_or_end(self.link, max(0.0, deadline - loop.time()))

    async def _link_or_end(self, link: LinkWatch, timeout_s: float) -> None:
        """Wait for the link to come back, but no longer than the call lasts."""
        back = asyncio.ensure_future(link.link_up(timeout_s))
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait({back, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            back.cancel()
            gone.cancel()

    async def _exists(self, path: str) -> bool:
        try:
            await self.client.request("GET", path)
        except AriNotFound:
            return False
        return True

    async def return_to_dialplan(self) -> None:
        """Stop the dead-man timer and continue in the dialplan, which acts on IVR_RESULT."""
        await self._rest("POST", f"channels/{self.id}/variable", {"variable": "TIMEOUT(absolute)", "value": "0"})
        await self._rest("POST", f"channels/{self.id}/continue")

    async def answer(self) -> None:
        await self._rest("POST", f"channels/{self.id}/answer")

    async def note(self, message: str) -> None:
        log.info("%s", message)

    async def set_variable(self, name: str, value: object) -> None:
        if name == "CHANNEL(language)":
            self.language = str(value)
        await self._rest("POST", f"channels/{self.id}/variable", {"variable": name, "value": str(value)})

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
        await self._rest("POST", f"channels/{self.id}/play/{playback}", {"media": media, "lang": self.language},
                         sent_if=f"playbacks/{playback}")
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
