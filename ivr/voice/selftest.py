"""The controller self-test an operator dials (90001 over FastAGI, 90002 over ARI): is the
controller reachable from Asterisk, and does a call get from the dialplan to it and back?

It uses no menu, CRM or journey, so when 100 fails and 90001 works, the fault is above
the wire; when both fail, it is the link (``agi://`` host and port, firewall, the
controller process). 90000 is the same check in pure dialplan, without the controller.
"""

from __future__ import annotations

from ivr.voice import channel_vars as cv
from ivr.voice.ports import VoiceChannel


async def agi_selftest(channel: VoiceChannel) -> None:
    """Answer, play a sound, read one digit, set a variable: the whole driver loop and nothing else.

    0 asks for an operator (the default queue); any other digit or none ends the call.
    """
    await channel.answer()
    digit = await channel.play_file("beep", "0123456789*#")
    if not digit:
        digit = await channel.wait_for_digit(5000)
    await channel.set_variable(cv.DIGIT, digit)
    if digit == "0":
        await channel.set_variable(cv.QUEUE, "support")
        await channel.set_variable(cv.ROUTE_REASON, "caller pressed 0 for an operator")
        await channel.set_variable(cv.RESULT, cv.RESULT_QUEUE)
    else:
        await channel.set_variable(cv.RESULT, cv.RESULT_HANGUP)
