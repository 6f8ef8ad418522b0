"""A fake Asterisk for wire tests: it connects to the FastAGI server like res_agi does and
answers each command line with a scripted AGI response (the trick panoramisk's tests use)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

Responder = Callable[[str], "str | None"]  # command line -> response line(s); None = hang up the socket


def headers(dnis: str = "100", caller: str = "79991234567", name: str = "", uniqueid: str = "1700000000.1") -> bytes:
    return (
        "agi_network: yes\nagi_network_script: call\nagi_request: agi://127.0.0.1:4573/call\n"
        f"agi_channel: PJSIP/demo-trunk-00000001\nagi_uniqueid: {uniqueid}\n"
        f"agi_callerid: {caller}\nagi_calleridname: {name or 'unknown'}\n"
        f"agi_extension: {dnis}\nagi_arg_1: {dnis}\n\n"
    ).encode()


async def fake_call(port: int, respond: Responder, **header_args: str) -> list[str]:
    """Run one call against the server on ``port``; return the command lines it sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(headers(**header_args))
    await writer.drain()
    sent: list[str] = []
    while True:
        line = await reader.readline()
        if not line:
            break
        command = line.decode().rstrip("\n")
        sent.append(command)
        answer = respond(command)
        if answer is None:
            writer.close()
            break
        writer.write(answer.encode() + b"\n")
        await writer.drain()
    return sent
