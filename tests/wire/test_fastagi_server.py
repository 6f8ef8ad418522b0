"""The FastAGI server against a fake Asterisk that writes raw AGI lines to a socket."""

from __future__ import annotations

import asyncio

import pytest

from ivr.voice.fastagi import AgiChannel, AgiHangup, AgiTimeout, FastAgiServer

HEADERS = (
    b"agi_network: yes\n"
    b"agi_network_script: call\n"
    b"agi_request: agi://127.0.0.1:4573/call\n"
    b"agi_channel: PJSIP/demo-trunk-00000001\n"
    b"agi_uniqueid: 1700000000.1\n"
    b"agi_callerid: 79991234567\n"
    b"agi_calleridname: unknown\n"
    b"agi_extension: 100\n"
    b"agi_arg_1: 100\n"
    b"\n"
)


async def serve(handler, read_timeout=2.0):
    app = FastAgiServer(read_timeout=read_timeout)
    app.add_route("call", handler)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return app, server, port


async def test_headers_become_a_typed_request_and_commands_are_quoted():
    seen = {}

    async def handler(channel: AgiChannel):
        seen["caller"] = channel.request.caller_number
        seen["name"] = channel.request.caller_name
        seen["dnis"] = channel.request.arg(1)
        await channel.set_variable("IVR_DIGIT", 'x"\ny')

    app, server, port = await serve(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEADERS)
    line = await reader.readline()
    writer.write(b"200 result=1\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    server.close()

    assert line == b'SET VARIABLE "IVR_DIGIT" "x\\" y"\n'
    assert seen == {"caller": "79991234567", "name": "", "dnis": "100"}


async def test_socket_closed_before_the_header_block_ends_does_not_spin():
    called = []

    async def handler(channel):
        called.append(channel)

    app, server, port = await serve(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"agi_network: yes\n")
    writer.close()
    await asyncio.sleep(0.2)
    server.close()

    assert called == []
    assert not app.live


async def test_hangup_notice_then_511_raises_agi_hangup():
    outcome = []

    async def handler(channel: AgiChannel):
        try:
            await channel.stream_file("beep")
        except AgiHangup:
            outcome.append("hangup")

    app, server, port = await serve(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEADERS)
    await reader.readline()
    writer.write(b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    server.close()

    assert outcome == ["hangup"]


async def test_silent_asterisk_times_out_instead_of_hanging_forever():
    outcome = []

    async def handler(channel: AgiChannel):
        try:
            await channel.answer()
        except AgiTimeout as exc:
            outcome.append(str(exc))

    app, server, port = await serve(handler, read_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEADERS)
    await reader.readline()
    await asyncio.sleep(0.5)
    server.close()

    assert outcome == ["no answer to ANSWER within 0.2 s"]


async def test_plain_function_handlers_are_refused_at_registration():
    app = FastAgiServer()

    with pytest.raises(TypeError, match="async def"):
        app.add_route("call", lambda channel: None)


async def test_handler_exception_is_logged_and_the_socket_closed(caplog):
    async def handler(channel):
        raise RuntimeError("boom")

    app, server, port = await serve(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEADERS)
    assert await reader.read() == b""  # closed by the server
    server.close()

    assert "call 1700000000.1" in caplog.text
