"""The FastAGI call handler: runs a flow on one call and always leaves a decision behind.

Whatever happens inside the flow, the dialplan finds either a decision (``IVR_RESULT``) or
a reason for the fallback queue (``IVR_FALLBACK``): an exception is logged with the call's
id and the caller goes to the fallback route, never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ivr.voice import channel_vars as cv
from ivr.voice.fastagi import AgiChannel, AgiError, AgiHangup

log = logging.getLogger(__name__)

Flow = Callable[[AgiChannel], Awaitable[None]]


class CallController:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    async def __call__(self, channel: AgiChannel) -> None:
        call_id = channel.request.uniqueid
        log.info("call %s from %r %r to %r", call_id, channel.request.caller_name, channel.request.caller_number,
                 channel.request.arg(1))
        try:
            await self.flow(channel)
        except AgiHangup as exc:
            log.info("call %s: caller hung up (%s)", call_id, exc)
        except Exception as exc:
            log.exception("call %s: flow failed, sending the caller to the fallback queue", call_id)
            await _fallback(channel, "controller-error", exc)


async def _fallback(channel: AgiChannel, reason: str, exc: Exception) -> None:
    try:
        await channel.set_variable(cv.FALLBACK, reason)
        await channel.set_variable(cv.RESULT, "")
    except AgiError:
        # The socket is gone too: the dialplan still falls back, on its own (no decision).
        log.warning("call %s: could not record the fallback reason (%s)", channel.request.uniqueid, exc)
