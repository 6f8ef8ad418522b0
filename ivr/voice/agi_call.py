"""A FastAGI call seen through the driver-neutral :class:`~ivr.voice.ports.VoiceChannel` port.

AGI has no audio path for our recogniser (speech runs on ARI calls, docs/speech.md), so
``audio()`` is None and ``barge_in`` is never set: keys interrupt prompts as before.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt

from ivr.voice.fastagi import AgiChannel
from ivr.voice.ports import AGI, CallAudio, CallInfo, call_id_or_new


class AgiCall:
    def __init__(self, channel: AgiChannel) -> None:
        self.channel = channel
        req = channel.request
        self._info = CallInfo(call_id=call_id_or_new(req.uniqueid), caller_number=req.caller_number, caller_name=req.caller_name,
                              dnis=req.arg(1) or req.extension, driver=AGI)

    @property
    def info(self) -> CallInfo:
        return self._info

    async def answer(self) -> None:
        await self.channel.answer()

    async def note(self, message: str) -> None:
        await self.channel.verbose(message)

    async def set_variable(self, name: str, value: object) -> None:
        await self.channel.set_variable(name, value)

    async def play_file(self, name: str, escape: str, barge_in: asyncio.Event | None = None) -> str:
        return await self.channel.stream_file(name, escape)

    async def say_number(self, number: int, escape: str, barge_in: asyncio.Event | None = None) -> str:
        return await self.channel.say_number(number, escape)

    async def say_digits(self, digits: str, escape: str, barge_in: asyncio.Event | None = None) -> str:
        return await self.channel.say_digits(digits, escape)

    async def say_date(self, day: dt.date, escape: str, barge_in: asyncio.Event | None = None) -> str:
        resp = await self.channel.command("SAY DATETIME", calendar.timegm(day.timetuple()), escape, "dBY", "UTC")
        return chr(resp.result_int) if resp.result_int > 0 else ""

    async def wait_for_digit(self, timeout_ms: int, barge_in: asyncio.Event | None = None) -> str:
        return await self.channel.wait_for_digit(timeout_ms)

    def audio(self) -> CallAudio | None:
        return None

    def take_notes(self) -> list[tuple[str, dict[str, object]]]:
        return []
