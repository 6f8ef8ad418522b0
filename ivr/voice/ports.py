"""What the voice flow needs from a call and from the layers above it, as small protocols.

A call is driven over FastAGI or ARI; :class:`VoiceChannel` is what both drivers offer the
engine flow, so the same menu runs on either and only the journey tells them apart.
Protocol details (AGI lines, ARI JSON) never cross this port: they are translated at the
driver's edge into these calls and these errors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ivr.journey.tokens import ContextClaim
from ivr.routing.rules import RouteDecision

log = logging.getLogger(__name__)

#: What ``play_file``/``wait_for_digit`` return when the caller started speaking (barge-in by voice).
SPOKEN = "~"

AGI = "agi"
ARI = "ari"
DRIVERS = (AGI, ARI)


class ChannelFailed(Exception):
    """The driver could not carry out a command on the call (protocol error, lost link)."""


class CallEnded(ChannelFailed):
    """The caller hung up or the channel is gone: nothing more can be played."""


_CALL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,149}")


def call_id_or_new(raw: str) -> str:
    """Asterisk's uniqueid when it is one (``1700000000.1``, ``asterisk1-1700000000.1``); else a
    fresh id of our own, so a call whose environment lost or mangled it is still journaled."""
    if _CALL_ID.fullmatch(raw):
        return raw
    made = f"ivr-{uuid.uuid4().hex}"
    log.warning("call with no usable uniqueid (%r): journaled as %s", raw[:40], made)
    return made


@dataclass(frozen=True, slots=True)
class CallInfo:
    """Who called which number, as the driver received it (raw: the session start cleans it)."""

    call_id: str
    caller_number: str
    caller_name: str
    dnis: str
    driver: str

    @property
    def asterisk(self) -> str:
        """The system name of the Asterisk the call is on ("" when it has none): Asterisk
        prefixes each uniqueid with it (``asterisk1-1796479125.0``, asterisk.conf systemname)."""
        name, dash, _rest = self.call_id.rpartition("-")
        return name if dash else ""


class VoiceChannel(Protocol):
    """One call, as the engine flow drives it. Every prompt method returns the key that
    interrupted it ("" if none), or :data:`SPOKEN` when ``barge_in`` was set by speech."""

    @property
    def info(self) -> CallInfo: ...

    async def answer(self) -> None: ...

    async def note(self, message: str) -> None:
        """A line for the operator's Asterisk log (AGI VERBOSE) or the controller log."""

    async def set_variable(self, name: str, value: object) -> None: ...

    async def play_file(self, name: str, escape: str, barge_in: asyncio.Event | None = None) -> str: ...

    async def say_number(self, number: int, escape: str, barge_in: asyncio.Event | None = None) -> str: ...

    async def say_digits(self, digits: str, escape: str, barge_in: asyncio.Event | None = None) -> str: ...

    async def say_date(self, day: dt.date, escape: str, barge_in: asyncio.Event | None = None) -> str: ...

    async def wait_for_digit(self, timeout_ms: int, barge_in: asyncio.Event | None = None) -> str: ...

    def audio(self) -> CallAudio | None:
        """The caller's audio for speech recognition, or None when this driver cannot carry it."""

    def take_notes(self) -> list[tuple[str, dict[str, object]]]:
        """Journey events the driver itself produced since the last call (a resume after a lost link)."""


class CallAudio(Protocol):
    """The caller's voice (only theirs, never the prompt) as 16-bit signed little-endian mono
    PCM at ``rate`` Hz, set up on first use and kept for the rest of the call."""

    @property
    def rate(self) -> int: ...

    async def listen(self) -> asyncio.Queue[bytes | None]:
        """Frames from now on arrive on a new queue (``None`` when the audio stops); earlier
        listeners get no more. Raises :class:`ChannelFailed` when the audio cannot be set up."""

    def stop_listening(self, frames: asyncio.Queue[bytes | None]) -> None: ...

    async def close(self) -> None: ...


class ContextTokens(Protocol):
    async def issue(self, claim: ContextClaim) -> str: ...


class Router(Protocol):
    async def decide(self, *, queue: str, priority: int, reason: str, customer: Mapping[str, Any],
                     caller_number: str | None, dnis: str | None, journey_key: str,
                     crm_status: str) -> RouteDecision: ...
