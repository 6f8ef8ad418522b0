"""Whatever Asterisk's AGI environment holds, the call ends with a decision and no traceback.

A fake Asterisk on a real socket sends a fuzzed environment (control characters, huge values,
bytes that are not UTF-8, repeated or missing keys) to the controller ``ivr serve`` builds,
then answers every command as a caller who presses nothing would. The real composition
runs behind it: caller lookup in the SQLite CRM, the demo tree, routing, the journey.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.composition import Controller
from ivr.voice.fastagi import MAX_HEADER_BYTES, FastAgiServer, parse_headers
from tests.wire.fuzz_support import Tracebacks, composed

KEYS = ["agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_uniqueid", "agi_callerid",
        "agi_calleridname", "agi_extension", "agi_arg_1", "agi_arg_2", "agi_language", "agi_context",
        "agi_dnid", "agi_rdnis", "agi_callingpres", "agi_accountcode", "agi_threadid"]
DECISION = re.compile(rb'^SET VARIABLE "?(IVR_RESULT|IVR_FALLBACK)"? ', re.MULTILINE)
MAX_COMMANDS = 400

hostile_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7f), max_size=80),  # control characters
    st.sampled_from(["79991234567", "+79992088812", "+7 (999) 555-00-11", "unknown", "", "100", "101", "104",
                     "call", "call?x=1", "/call", "Eve\"; EXEC System", "x" * 5000, "\x00\x01\x02", "\r"]),
).map(lambda s: s.replace("\n", " ").encode("utf-8", "surrogatepass"))
raw_bytes = st.binary(max_size=120).map(lambda b: b.replace(b"\n", b" "))
value = st.one_of(hostile_text, hostile_text, raw_bytes)
environment = st.builds(
    lambda fixed, extra: b"".join(b"%s: %s\n" % (k.encode(), v) for k, v in [*fixed.items(), *extra]) + b"\n",
    st.fixed_dictionaries({"agi_network_script": st.sampled_from([b"call"]) | value},
                          optional={k: value for k in KEYS if k != "agi_network_script"}),
    st.lists(st.tuples(st.sampled_from(KEYS) | st.text(max_size=10), value), max_size=4),
)


@pytest.fixture(scope="module")
def controller(fuzz_loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    _settings, built = composed(fuzz_loop, tmp_path_factory.mktemp("agi-fuzz"))
    yield built
    fuzz_loop.run_until_complete(built.close())


async def play_asterisk(port: int, block: bytes) -> bytes:
    """Send ``block``, then answer every command like a caller who presses nothing; what was asked."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    asked = bytearray()
    try:
        writer.write(block)
        for _ in range(MAX_COMMANDS):
            async with asyncio.timeout(10):
                line = await reader.readline()
            if not line:
                break
            asked += line
            writer.write(b"200 result=0 endpos=0\n")
            await writer.drain()
    finally:
        writer.close()
    return bytes(asked)


def test_any_agi_environment_ends_the_call_with_a_decision_and_no_traceback(
        fuzz_loop: asyncio.AbstractEventLoop, controller: Controller) -> None:
    async def start() -> asyncio.Server:
        agi = FastAgiServer(read_timeout=5)
        agi.add_route("call", controller.call_handler)
        return await asyncio.start_server(agi.handler, "127.0.0.1", 0)

    server = fuzz_loop.run_until_complete(start())
    port = server.sockets[0].getsockname()[1]
    handler = Tracebacks()
    logging.getLogger().addHandler(handler)
    try:
        @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
        @given(block=environment)
        def one_call(block: bytes) -> None:
            asked = fuzz_loop.run_until_complete(play_asterisk(port, block))
            script = parse_headers(block).script.split("?")[0].strip("/")  # what the server routes by
            routed = script == "call" and len(block) <= MAX_HEADER_BYTES
            assert not handler.records, handler.records[0].getMessage()
            if routed:
                assert DECISION.search(asked), f"no decision left for the dialplan: {asked[-400:]!r}"
            else:
                assert asked == b""  # no route, or a block too large: the connection is closed unanswered

        one_call()
    finally:
        logging.getLogger().removeHandler(handler)
        server.close()
        fuzz_loop.run_until_complete(server.wait_closed())
