"""Asterisk restarted under a running controller: journal what it forgot, tell it again what it must know.

panoramisk logs in again by itself after the link drops. A drop may be a network blip, or
Asterisk may have restarted (a crash, an upgrade, ``core restart now``): then every call it
had is gone, and for the calls the controller had already routed to a queue no Hangup will
ever arrive, so their journey would stay open for ever. After each re-login this asks
Asterisk when it started and which channels it has, journals each routed call of that
Asterisk it no longer has as ``call_lost`` (reason ``asterisk_restarted``, or ``ended_unseen``
when only the link dropped), and publishes the numbers' drivers again. Calls still in the
menu need none of this: their FastAGI socket or ARI channel ends, and the engine journals
the hangup itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from ivr.voice.agent_events import AgentEventRecorder

log = logging.getLogger(__name__)

RESTARTED = "asterisk_restarted"
UNSEEN = "ended_unseen"
#: Asterisk answers AMI before it has fully booted; the questions are asked again this often.
ATTEMPTS = 10


class AsteriskState(Protocol):
    async def core_identity(self) -> tuple[str, str]: ...

    async def channel_ids(self) -> set[str]: ...


class RestartWatch:
    def __init__(self, ami: AsteriskState, recorder: AgentEventRecorder,
                 republish: Callable[[], Awaitable[None]], *, retry_s: float = 1.0) -> None:
        self.ami = ami
        self.recorder = recorder
        self.republish = republish
        self.retry_s = retry_s
        self.started: str | None = None
        self.restarts = 0

    async def remember(self) -> None:
        """At the first login: when this Asterisk started, to tell a restart from a blip later."""
        _name, self.started = await self.ami.core_identity()

    async def after_relogin(self) -> None:
        for attempt in range(ATTEMPTS):
            try:
                name, started = await self.ami.core_identity()
                live = await self.ami.channel_ids()
                break
            except Exception as exc:  # noqa: BLE001 - still booting: ask again
                if attempt == ATTEMPTS - 1:
                    raise
                log.info("Asterisk not ready after the AMI re-login (%s); asking again", exc)
                await asyncio.sleep(self.retry_s)
        restarted = self.started is not None and started != self.started
        self.started = started
        if restarted:
            self.restarts += 1
        gone = self.recorder.reconcile(live, name, RESTARTED if restarted else UNSEEN)
        if restarted or gone:
            log.warning("Asterisk %s %s; %d routed call(s) it no longer has journaled as lost", name or "(no name)",
                        "restarted" if restarted else "was out of sight", len(gone))
        await self.republish()
