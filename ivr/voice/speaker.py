"""Speak the engine's Play actions on a call: files, generated speech and typed values.

Typed values are said the voice way: numbers and digits with Asterisk's SAY NUMBER and
SAY DIGITS in the channel's language (core sounds exist for English and Russian), money
as a number followed by the currency's unit word in the right grammatical form, dates
with SAY DATETIME. A key pressed during any part stops the prompt (barge-in) and is
returned as the caller's first key.
"""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal

from ivr.flow.actions import Play, Sound, Text, Typed
from ivr.voice.fastagi import AgiChannel
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

    async def play(self, channel: AgiChannel, play: Play, escape_digits: str) -> str:
        """Play every part; return the key that interrupted, or ""."""
        recorded = None
        if len(play.parts) == 1 and isinstance(play.parts[0], Text):
            recorded = self.files.recorded(play.language, play.prompt_id)
        if recorded:
            return await channel.stream_file(recorded, escape_digits)
        for part in play.parts:
            key = await self._part(channel, part, play.language, escape_digits)
            if key:
                return key
        return ""

    async def _part(self, channel: AgiChannel, part: object, language: str, escape: str) -> str:
        if isinstance(part, Text):
            if not part.text.strip():
                return ""
            return await channel.stream_file(await self.files.text(language, part.text), escape)
        if isinstance(part, Sound):
            return await channel.stream_file(self.files.sound(language, part.name), escape)
        if isinstance(part, Typed):
            return await self._typed(channel, part, language, escape)
        return ""

    async def _typed(self, channel: AgiChannel, part: Typed, language: str, escape: str) -> str:
        value = part.value
        if part.kind == "digits":
            return await channel.say_digits(str(value), escape)
        if part.kind == "date":
            day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
            epoch = calendar.timegm(day.timetuple())
            resp = await channel.command("SAY DATETIME", epoch, escape, "dBY", "UTC")
            return chr(resp.result_int) if resp.result_int > 0 else ""
        amount = Decimal(str(value))
        if part.kind == "number":
            if amount == amount.to_integral_value():
                return await channel.say_number(int(amount), escape)
            return await channel.say_digits(str(amount), escape)
        return await self._money(channel, amount, (part.currency_code or "").upper(), language, escape)

    async def _money(self, channel: AgiChannel, amount: Decimal, code: str, language: str, escape: str) -> str:
        words = CURRENCY_WORDS.get(code, {}).get(language)
        if amount < 0:
            key = await self._say_text(channel, MINUS.get(language, "minus"), language, escape)
            if key:
                return key
            amount = -amount
        major = int(amount)
        minor = int((amount - major) * 100)
        key = await channel.say_number(major, escape)
        if key:
            return key
        key = await self._say_text(channel, words[0][plural_form(major, language)] if words else code, language,
                                   escape)
        if key or not minor:
            return key
        key = await channel.say_number(minor, escape)
        if key or not words:
            return key
        return await self._say_text(channel, words[1][plural_form(minor, language)], language, escape)

    async def _say_text(self, channel: AgiChannel, text: str, language: str, escape: str) -> str:
        return await channel.stream_file(await self.files.text(language, text), escape)
