"""The call handler of both drivers: runs a flow on one call and always leaves a decision behind.

Whatever happens inside the flow, the dialplan finds either a decision (``IVR_RESULT``) or
a reason for the fallback queue (``IVR_FALLBACK``): an exception is logged with the call's
id and the caller goes to the fallback route, never dropped. FastAGI hands it an
:class:`~ivr.voice.fastagi.AgiChannel` (wrapped here), the ARI driver a ready channel.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ivr.config.errors import TemplateFailed
from ivr.voice import channel_vars as cv
from ivr.voice.agi_call import AgiCall
from ivr.voice.fastagi import AgiChannel
from ivr.voice.ports import CallEnded, ChannelFailed, VoiceChannel

log = logging.getLogger(__name__)

Flow = Callable[[VoiceChannel], Awaitable[None]]
FALLBACK_REASON = "controller-error"


class CallController:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    async def __call__(self, channel: VoiceChannel | AgiChannel) -> None:
        call = AgiCall(channel) if isinstance(channel, AgiChannel) else channel
        info = call.info
        log.info("call %s (%s) from %r %r to %r", info.call_id, info.driver, info.caller_name, info.caller_number,
                 info.dnis)
        try:
            await self.flow(call)
        except CallEnded as exc:
            log.info("call %s: caller hung up (%s)", info.call_id, exc)
        except TemplateFailed as exc:  # the admin's menu file, not our code: its words, no traceback
            log.error("call %s: %s; sending the caller to the fallback queue", info.call_id, exc)
            await _fallback(call, FALLBACK_REASON, exc)
        except Exception as exc:
            log.exception("call %s: flow failed, sending the caller to the fallback queue", info.call_id)
            await _fallback(call, FALLBACK_REASON, exc)


async def _fallback(channel: VoiceChannel, reason: str, exc: Exception) -> None:
    try:
        await channel.set_variable(cv.FALLBACK, reason)
        await channel.set_variable(cv.RESULT, "")
    except ChannelFailed:
        # The link is gone too: the dialplan still falls back, on its own (no decision).
        log.warning("call %s: could not record the fallback reason (%s)", channel.info.call_id, exc)
