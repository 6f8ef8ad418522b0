"""A pure-dialplan twin of one controller call, for a fair baseline.

The controller's call on a number is recorded as AGI commands (against a fake Asterisk
socket, no real call), then replayed as dialplan applications added at run time through
AMI ``DialplanExtensionAdd``: same prompts, same SAY NUMBER, same variables, same hangup.
Calling the twin costs Asterisk the same media work as the controller flow, so the ratio
of the two isolates what the controller adds. Nothing is written to the config files;
the twin disappears at the next dialplan reload.

The recording runs on the composition ``ivr serve`` runs (the same CRM, the same actions)
for the bench's own caller, so the twin says what the controller says to that caller:
recorded with the demo's stand-in actions instead, the balance number read another
customer's balance (a longer prompt) and the twin did more work than the flow it copied.
A flow that waits for the caller's keys cannot be replayed as a straight line of
applications: :class:`NotTwinnable` then, and the bench uses the selftest baseline.
"""

from __future__ import annotations

import asyncio
import shlex
import tempfile
from pathlib import Path

from ivr.composition import build_controller
from ivr.harness.fake_asterisk import fake_call
from ivr.settings import Settings, load_settings
from ivr.voice.ami import AmiClient
from ivr.voice.fastagi import FastAgiServer

#: Commands whose answer depends on the caller: a straight dialplan line cannot copy them.
INPUT = ("WAIT FOR DIGIT", "GET DATA", "RECORD FILE", "SPEECH")


class NotTwinnable(Exception):
    """The flow on this number waits for the caller's input, or is not the menu flow at all."""


def _answer(command: str) -> str:
    if command.startswith(("STREAM FILE", "SAY")):
        return "200 result=0 endpos=100"
    if command.startswith("WAIT FOR DIGIT"):
        return "200 result=0"
    return "200 result=1"


async def record_commands(settings: Settings, dnis: str, caller: str) -> list[str]:
    """The AGI commands the controller sends on a call from ``caller`` to ``dnis`` (state in a temporary folder)."""
    state = Path(tempfile.mkdtemp(prefix="ivr-twin-"))
    crm = settings.path(settings.crm.sqlite_path)
    recording = load_settings(env={"IVR_HOME": str(settings.home), "IVR_CRM_SQLITE_PATH": str(crm),
                                   "IVR_JOURNEY_SQLITE_PATH": str(state / "journey.sqlite"), "IVR_SPEECH_MODEL": ""})
    controller = await build_controller(recording)
    try:
        app = FastAgiServer(read_timeout=5)
        app.add_route("call", controller.call_handler)
        server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
        try:
            return await fake_call(server.sockets[0].getsockname()[1], _answer, dnis=dnis, caller=caller)
        finally:
            server.close()
    finally:
        await controller.close()


def to_dialplan(commands: list[str]) -> list[tuple[str, str]]:
    """AGI command lines -> (application, data) in the same order, ending with a hangup."""
    apps: list[tuple[str, str]] = []
    for line in commands:
        words = shlex.split(line)
        verb = " ".join(words[:2]) if len(words) > 1 and words[0] in ("STREAM", "SAY", "SET") else words[0]
        args = words[2:] if " " in verb else words[1:]
        if verb == "ANSWER":
            apps.append(("Answer", ""))
        elif verb == "STREAM FILE":
            apps.append(("Playback", args[0]))
        elif verb == "SAY NUMBER":
            apps.append(("SayNumber", args[0]))
        elif verb == "SAY DIGITS":
            apps.append(("SayDigits", args[0]))
        elif verb == "SET VARIABLE":
            apps.append(("Set", f"{args[0]}={args[1]}"))
        elif verb == "VERBOSE":
            apps.append(("Verbose", f"1,{args[0].replace(',', ';')}"))
    apps.append(("Hangup", "16"))
    return apps


async def install_twin(settings: Settings, dnis: str, twin: str, caller: str) -> list[tuple[str, str]]:
    commands = await record_commands(settings, dnis, caller)
    waits = [c for c in commands if c.startswith(INPUT)]
    if waits:
        raise NotTwinnable(f"the flow on {dnis} waits for the caller ({waits[0]}): no straight dialplan copies it")
    apps = to_dialplan(commands)
    async with AmiClient("127.0.0.1", settings.ami.port, settings.ami.user, settings.ami.secret) as ami:
        for priority, (app, data) in enumerate(apps, start=1):
            await ami.action({"Action": "DialplanExtensionAdd", "Context": "inbound-numbers", "Extension": twin,
                              "Priority": str(priority), "Application": app, "ApplicationData": data,
                              "Replace": "yes"})
    return apps
