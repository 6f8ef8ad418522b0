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
A menu flow is twinned for one path of keys: the recording answers each ``WAIT FOR DIGIT``
with the next key, and each menu (its interruptible prompts, then the wait) becomes one
``Read()`` of the same files with the same timeout, which stops the prompt at a key as
the controller's ``STREAM FILE`` with escape digits does, followed by a check that the
key is the expected one (another key hangs the twin up, and the bench sees the call
missing from the queue). A flow that routes to a queue ends in the same ``ivr-queue``
dialplan with the same variables (token, priority, reason) the controller set. Input
the bench cannot script (``GET DATA``, recording, speech), or a wait for more keys than
given, is :class:`NotTwinnable`.
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


class ScriptedCaller:
    """Answers the controller's AGI commands as Asterisk would for a caller who presses
    ``keys`` one per ``WAIT FOR DIGIT``, in order, and never during a prompt."""

    def __init__(self, keys: str = "") -> None:
        self.keys = list(keys)
        self.pressed: list[str] = []
        self.waited_past_keys = False

    def __call__(self, command: str) -> str:
        if command.startswith(("STREAM FILE", "SAY")):
            return "200 result=0 endpos=100"
        if command.startswith("WAIT FOR DIGIT"):
            if not self.keys:
                self.waited_past_keys = True
                return "200 result=-1"  # the caller hung up: the controller ends the call
            self.pressed.append(self.keys.pop(0))
            return f"200 result={ord(self.pressed[-1])}"
        return "200 result=1"


async def record_commands(settings: Settings, dnis: str, caller: str, keys: str = "") -> list[str]:
    """The AGI commands the controller sends on a call from ``caller`` to ``dnis`` who presses
    ``keys`` at the menus' waits (state in a temporary folder). Each ``WAIT FOR DIGIT`` line is
    followed in the list by ``#KEY <digit>``, the key the recording answered."""
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
            caller_robot = ScriptedCaller(keys)
            sent = await fake_call(server.sockets[0].getsockname()[1], caller_robot, dnis=dnis, caller=caller)
            if caller_robot.waited_past_keys:
                raise NotTwinnable(f"the flow on {dnis} waits for a key after {keys or 'none'!r}: "
                                   "give the bench the whole path of keys")
            if caller_robot.keys:
                raise NotTwinnable(f"the flow ended before the keys {''.join(caller_robot.keys)!r} were asked for")
            pressed = iter(caller_robot.pressed)
            return [line for command in sent
                    for line in ([command, f"#KEY {next(pressed)}"] if command.startswith("WAIT FOR DIGIT")
                                 else [command])]
        finally:
            server.close()
    finally:
        await controller.close()


#: The twin's priority that hangs up a call whose key was not the recorded one (see to_dialplan)
WRONG_KEY = "wrong-key"


def to_dialplan(commands: list[str]) -> list[tuple[str, str]]:
    """AGI command lines (with the ``#KEY`` lines of :func:`record_commands`) -> (application,
    data) in the same order. A menu's interruptible prompts and its wait become one ``Read()``;
    a route to a queue continues in ``ivr-queue`` as the controller's call does; otherwise a
    hangup. The last application is the wrong-key hangup, jumped to by ``GotoIf``."""
    apps: list[tuple[str, str]] = []
    prompts: list[str] = []  # interruptible files not yet played: the next menu's Read plays them
    wait_s = ""
    result = ""

    def play_pending() -> None:
        apps.extend(("Playback", f) for f in prompts)
        prompts.clear()

    for line in commands:
        words = shlex.split(line)
        verb = " ".join(words[:3]) if words[:3] == ["WAIT", "FOR", "DIGIT"] else (
            " ".join(words[:2]) if len(words) > 1 and words[0] in ("STREAM", "SAY", "SET") else words[0])
        args = words[len(verb.split()):]
        if verb == "WAIT FOR DIGIT":
            wait_s = f"{int(args[0]) / 1000:g}"
            continue
        if verb == "#KEY":
            apps.append(("Read", f"IVR_TWIN_KEY,{'&'.join(prompts)},1,,1,{wait_s}"))
            apps.append(("GotoIf", f'$["${{IVR_TWIN_KEY}}" != "{args[0]}"]?{WRONG_KEY}'))
            prompts.clear()
            continue
        if verb == "STREAM FILE" and len(args) > 1 and args[1]:
            prompts.append(args[0])
            continue
        play_pending()
        if verb == "ANSWER":
            apps.append(("Answer", ""))
        elif verb == "STREAM FILE":
            apps.append(("Playback", args[0]))
        elif verb == "SAY NUMBER":
            apps.append(("SayNumber", args[0]))
        elif verb == "SAY DIGITS":
            apps.append(("SayDigits", args[0]))
        elif verb == "SET VARIABLE" and args[0] == "IVR_RESULT":
            result = args[1]
        elif verb == "SET VARIABLE":
            apps.append(("Set", f"{args[0]}={args[1]}"))
        elif verb == "VERBOSE":
            apps.append(("Verbose", f"1,{args[0].replace(',', ';')}"))
    play_pending()
    apps.append(("Goto", "ivr-queue,s,1") if result == "queue" else ("Hangup", "16"))
    apps.append(("Hangup", "16"))  # WRONG_KEY
    return apps


async def install_twin(settings: Settings, dnis: str, twin: str, caller: str,
                       keys: str = "") -> list[tuple[str, str]]:
    """Record the controller's call to ``dnis`` (``keys`` pressed at its menus) and add it to the
    running dialplan as extension ``twin`` of ``inbound-numbers``; returns the applications."""
    commands = await record_commands(settings, dnis, caller, keys)
    waits = [c for c in commands if c.startswith(INPUT) and not c.startswith("WAIT FOR DIGIT")]
    if waits:
        raise NotTwinnable(f"the flow on {dnis} waits for input the bench cannot script ({waits[0]})")
    apps = to_dialplan(commands)
    wrong_key = len(apps)
    async with AmiClient("127.0.0.1", settings.ami.port, settings.ami.user, settings.ami.secret) as ami:
        for priority, (app, data) in enumerate(apps, start=1):
            await ami.action({"Action": "DialplanExtensionAdd", "Context": "inbound-numbers", "Extension": twin,
                              "Priority": str(priority), "Application": app,
                              "ApplicationData": data.replace(WRONG_KEY, str(wrong_key)), "Replace": "yes"})
    return apps
