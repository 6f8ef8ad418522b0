"""Speak the engine's Play actions on a call: files, generated speech and typed values.

Typed values are said the voice way: numbers and digits with Asterisk's SAY NUMBER and
SAY DIGITS (or ARI's ``number:``/``digits:`` media) in the channel's language (core sounds
exist for English and Russian), money as a number followed by the currency's unit word in
the right grammatical form, dates as day, month and year. A key pressed during any part
stops the prompt (barge-in) and is returned as the caller's first key; so does speech,
when the flow listens (``barge_in``), as :data:`~ivr.voice.ports.SPOKEN`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

from ivr.flow.actions import Play, Sound, Text, Typed
from ivr.voice.ports import VoiceChannel
from ivr.voice.prompt_files import PromptFiles

# Unit words per currency and language: (one, few, many) for Russian plural rules.
CURRENCY_WORDS: dict[str, dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]]] = {
    "RUB": {"en": (("ruble", "rubles", "rubles"), ("kopeck", "kopecks", "kopecks")),
            "ru": (("рубль", "рубля", "рублей"), ("копейка", "копейки", "копеек"))},
    "USD": {"en": (("dollar", "dollars", "dollars"), ("cent", "cents", "cents")),
            "ru": (("доллар", "доллара", "долларов"), ("цент", "цента", "центов"))},
    "EUR": {"en": (("euro", "euros", "euros"), ("cent", "cents", "cents")),
            "ru": (("евро", "евро", "евро"), ("цент", "цента", "центов"))},
}
MINUS = {"en": "minus", "ru": "минус"}


def plural_form(n: int, language: str) -> int:
    """0 = one, 1 = few, 2 = many (Russian rules; English has one and many)."""
    n = abs(n)
    if language == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return 0
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return 1
        return 2
    return 0 if n == 1 else 2


class Speaker:
    def __init__(self, files: PromptFiles) -> None:
        self.files = files

    async def play(self, channel: VoiceChannel, play: Play, escape_digits: str,
                   barge_in: asyncio.Event | None = None) -> str:
        """Play every part; return the key that interrupted (or SPOKEN), or ""."""
        recorded = None
        if len(play.parts) == 1 and isinstance(play.parts[0], Text):
            recorded = self.files.recorded(play.language, play.prompt_id)
        if recorded:
            return await channel.play_file(recorded, escape_digits, barge_in)
        for part in play.parts:
            key = await self._part(channel, part, play.language, escape_digits, barge_in)
            if key:
                return key
        return ""

    async def _part(self, channel: VoiceChannel, part: object, language: str, escape: str,
                    barge_in: asyncio.Event | None) -> str:
        if isinstance(part, Text):
            if not part.text.strip():
                return ""
            return await channel.play_file(await self.files.text(language, part.text), escape, barge_in)
        if isinstance(part, Sound):
            return await channel.play_file(self.files.sound(language, part.name), escape, barge_in)
        if isinstance(part, Typed):
            return await self._typed(channel, part, language, escape, barge_in)
        return ""

    async def _typed(self, channel: VoiceChannel, part: Typed, language: str, escape: str,
                     barge_in: asyncio.Event | None) -> str:
        value = part.value
        if part.kind == "digits":
            return await channel.say_digits(str(value), escape, barge_in)
        if part.kind == "date":
            day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
            return await channel.say_date(day, escape, barge_in)
        amount = Decimal(str(value))
        if part.kind == "number":
            if amount == amount.to_integral_value():
                return await channel.say_number(int(amount), escape, barge_in)
            return await channel.say_digits(str(amount), escape, barge_in)
        return await self._money(channel, amount, (part.currency_code or "").upper(), language, escape, barge_in)

    async def _money(self, channel: VoiceChannel, amount: Decimal, code: str, language: str, escape: str,
                     barge_in: asyncio.Event | None) -> str:
        words = CURRENCY_WORDS.get(code, {}).get(language)
        if amount < 0:
            key = await self._say_text(channel, MINUS.get(language, "minus"), language, escape, barge_in)
            if key:
                return key
            amount = -amount
        major = int(amount)
        minor = int((amount - major) * 100)
        key = await channel.say_number(major, escape, barge_in)
        if key:
            return key
        key = await self._say_text(channel, words[0][plural_form(major, language)] if words else code, language,
                                   escape, barge_in)
        if key or not minor:
            return key
        key = await channel.say_number(minor, escape, barge_in)
        if key or not words:
            return key
        return await self._say_text(channel, words[1][plural_form(minor, language)], language, escape, barge_in)

    async def _say_text(self, channel: VoiceChannel, text: str, language: str, escape: str,
                        barge_in: asyncio.Event | None) -> str:
        return await channel.play_file(await self.files.text(language, text), escape, barge_in)
