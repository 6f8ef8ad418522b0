"""A pure-dialplan twin of one controller call, for a fair baseline.

The controller's call on a number is recorded as AGI commands (against a fake Asterisk
socket, no real call), then replayed as dialplan applications added at run time through
AMI ``DialplanExtensionAdd``: same prompts, same SAY NUMBER, same variables, same hangup.
Calling the twin costs Asterisk the same media work as the controller flow, so the ratio
of the two isolates what the controller adds. Nothing is written to the config files;
the twin disappears at the next dialplan reload.
"""

from __future__ import annotations

import asyncio
import shlex

from ivr.composition import load_menu_tree
from ivr.harness.fake_asterisk import fake_call
from ivr.journey.memory import MemoryJourney
from ivr.live.trees import TreeStore
from ivr.settings import Settings
from ivr.tools.simulate import DemoActions
from ivr.voice.ami import AmiClient
from ivr.voice.controller import CallController
from ivr.voice.engine_flow import EngineFlow
from ivr.voice.fastagi import FastAgiServer
from ivr.voice.prompt_files import PromptFiles
from ivr.voice.speaker import Speaker


def _answer(command: str) -> str:
    if command.startswith(("STREAM FILE", "SAY")):
        return "200 result=0 endpos=100"
    if command.startswith("WAIT FOR DIGIT"):
        return "200 result=0"
    return "200 result=1"


async def record_commands(settings: Settings, dnis: str) -> list[str]:
    trees = TreeStore(lambda: load_menu_tree(settings))
    flow = EngineFlow(trees, Speaker(PromptFiles(settings.home / "sounds", settings.prompts.asterisk_dir)),
                      DemoActions(), MemoryJourney())
    app = FastAgiServer(read_timeout=5)
    app.add_route("call", CallController(flow))
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    try:
        return await fake_call(server.sockets[0].getsockname()[1], _answer, dnis=dnis)
    finally:
        server.close()


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


async def install_twin(settings: Settings, dnis: str, twin: str) -> list[tuple[str, str]]:
    apps = to_dialplan(await record_commands(settings, dnis))
    async with AmiClient("127.0.0.1", settings.ami.port, settings.ami.user, settings.ami.secret) as ami:
        for priority, (app, data) in enumerate(apps, start=1):
            await ami.action({"Action": "DialplanExtensionAdd", "Context": "inbound-numbers", "Extension": twin,
                              "Priority": str(priority), "Application": app, "ApplicationData": data,
                              "Replace": "yes"})
    return apps
