"""The engine-driven controller against a fake Asterisk: AGI in, journey and variables out."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ivr.composition import load_menu_tree
from ivr.crm.actions import CrmActions
from ivr.crm.lookup import CrmLookup
from ivr.flow.actions import Play
from ivr.flow.render_text import format_parts
from ivr.harness.fake_asterisk import fake_call
from ivr.journey.memory import MemoryJourney
from ivr.live.trees import TreeStore
from ivr.settings import load_settings
from ivr.tools.simulate import DemoActions
from ivr.voice.controller import CallController
from ivr.voice.engine_flow import EngineFlow
from ivr.voice.fastagi import FastAgiServer
from ivr.voice.ports import VoiceChannel
from ivr.voice.prompt_files import PromptFiles
from ivr.voice.speaker import Speaker


class Script:
    """Answers like Asterisk: OK to everything, the listed digits to WAIT FOR DIGIT / STREAM FILE."""

    def __init__(self, keys: str = "", hangup_on_stream: int | None = None) -> None:
        self.keys = list(keys)
        self.streams = 0
        self.hangup_on_stream = hangup_on_stream

    def __call__(self, command: str) -> str | None:
        if command.startswith("STREAM FILE"):
            self.streams += 1
            if self.hangup_on_stream == self.streams:
                return "HANGUP\n200 result=-1 endpos=0"
            return "200 result=0 endpos=100"
        if command.startswith("WAIT FOR DIGIT"):
            return f"200 result={ord(self.keys.pop(0))}" if self.keys else "200 result=0"
        if command.startswith("SAY"):
            return "200 result=0"
        return "200 result=1"


async def run_call(script: Script, tmp_path: Path, **headers: str):
    settings = load_settings(env={})
    journey = MemoryJourney()
    trees = TreeStore(lambda: load_menu_tree(settings))
    files = PromptFiles(tmp_path / "sounds")  # generated prompts go to the test's folder, not the source tree
    flow = EngineFlow(trees, Speaker(files), DemoActions(), journey)
    app = FastAgiServer(read_timeout=2)
    app.add_route("call", CallController(flow))
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        sent = await asyncio.wait_for(fake_call(port, script, **headers), 20)
        await asyncio.sleep(0.05)
    finally:
        server.close()
    return sent, journey


def types(journey: MemoryJourney, key: str = "79991234567") -> list[str]:
    return [e.type for e in journey.events(key)]


async def test_operator_key_sets_the_queue_decision_for_the_dialplan(tmp_path):
    sent, journey = await run_call(Script(keys="0"), tmp_path)

    assert 'SET VARIABLE "IVR_QUEUE" "support"' in sent
    assert 'SET VARIABLE "IVR_ROUTE_REASON" "caller asked for an operator"' in sent
    assert sent[-1] == 'SET VARIABLE "IVR_RESULT" "queue"'
    assert types(journey)[-2:] == ["route_chosen", "route_decided"]


async def test_hangup_in_the_middle_of_a_prompt_ends_the_session_and_is_recorded(tmp_path):
    sent, journey = await run_call(Script(hangup_on_stream=2), tmp_path)

    assert not any(line.startswith('SET VARIABLE "IVR_RESULT"') for line in sent)
    assert types(journey)[-1] == "hangup"
    assert [e.channel for e in journey.events("79991234567")] == ["voice"] * len(types(journey))


async def test_every_journey_event_carries_the_call_id(tmp_path):
    _sent, journey = await run_call(Script(keys="0"), tmp_path, uniqueid="1700000000.42")

    assert {e.interaction for e in journey.events("79991234567")} == {"1700000000.42"}


async def test_control_characters_in_the_caller_id_never_reach_the_flow(tmp_path):
    _sent, journey = await run_call(Script(keys="0"), tmp_path, caller="7999\x1b1234567")

    assert journey.events("7999 1234567")


class TranscriptSpeaker(Speaker):
    """Says nothing on the wire: keeps the text of every prompt, so a test reads what the caller heard."""

    def __init__(self, files: PromptFiles) -> None:
        super().__init__(files)
        self.heard: list[str] = []

    async def play(self, channel: VoiceChannel, play: Play, escape_digits: str,
                   barge_in: asyncio.Event | None = None) -> str:
        self.heard.append(format_parts(play.parts))
        return ""


async def test_after_an_action_changes_the_customer_the_call_offers_what_is_true_now(tmp_path, demo_directory):
    """Anna switches caller ID off; the Services menu she returns to offers to turn it on."""
    settings = load_settings(env={})
    lookup = CrmLookup(demo_directory)
    actions = CrmActions(demo_directory, on_change=lookup.forget)
    speaker = TranscriptSpeaker(PromptFiles(tmp_path / "sounds"))
    flow = EngineFlow(TreeStore(lambda: load_menu_tree(settings)), speaker, actions, MemoryJourney(), lookup=lookup)
    app = FastAgiServer(read_timeout=2)
    app.add_route("call", CallController(flow))
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    try:
        await asyncio.wait_for(fake_call(server.sockets[0].getsockname()[1], Script(keys="311")), 20)
        await asyncio.sleep(0.05)
    finally:
        server.close()

    done = next(i for i, text in enumerate(speaker.heard) if text.startswith("Done."))
    assert any("To turn off caller ID" in text for text in speaker.heard[:done])
    assert any("To turn on caller ID" in text for text in speaker.heard[done:])
