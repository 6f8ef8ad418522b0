"""A client of the Vosk WebSocket protocol: one WebSocket per utterance.

The protocol (alphacep's vosk-server, and our ``ivr recogniser``): a text frame
``{"config": {"sample_rate": R, "phrase_list": [...], "words": 1}}``, then binary PCM
frames, each answered with ``{"partial": ...}`` or a result; ``{"eof" : 1}`` asks for the
final result. Every wait is bounded by ``reply_timeout_s``: a recogniser that stops
answering is down, and the caller is told to use the keys at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import aiohttp

from ivr.voice.speech.recogniser import RecogniserDown, Reply, reply_from

UNKNOWN_WORD = "[unk]"


class VoskStream:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession,
                 reply_timeout_s: float) -> None:
        self._ws = ws
        self._session = session
        self._timeout = reply_timeout_s

    async def _ask(self, payload: bytes | str) -> Reply:
        try:
            if isinstance(payload, bytes):
                await self._ws.send_bytes(payload)
            else:
                await self._ws.send_str(payload)
            async with asyncio.timeout(self._timeout):
                msg = await self._ws.receive()
        except TimeoutError:
            raise RecogniserDown(f"no answer from the recogniser within {self._timeout:g} s") from None
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise RecogniserDown(f"the recogniser connection failed: {exc}") from None
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise RecogniserDown(f"the recogniser closed the stream ({msg.type.name})")
        try:
            return reply_from(json.loads(msg.data))
        except (ValueError, AttributeError) as exc:
            raise RecogniserDown(f"unreadable answer from the recogniser: {exc}") from None

    async def feed(self, pcm: bytes) -> Reply:
        return await self._ask(pcm)

    async def finish(self) -> Reply:
        reply = await self._ask('{"eof" : 1}')
        return Reply(reply.text, True, reply.confidence)

    async def close(self) -> None:
        try:
            await self._ws.close()
        finally:
            await self._session.close()


class VoskClient:
    """Opens streams on ``url`` (``ws://127.0.0.1:2700``)."""

    def __init__(self, url: str, *, connect_timeout_s: float = 1.0, reply_timeout_s: float = 2.0) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self.reply_timeout_s = reply_timeout_s

    async def open(self, words: Sequence[str], rate: int) -> VoskStream:
        session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                ws = await session.ws_connect(self.url, autoping=True, heartbeat=None)
            config: dict[str, object] = {"sample_rate": rate, "words": 1}
            if words:
                config["phrase_list"] = [*words, UNKNOWN_WORD]
            await ws.send_str(json.dumps({"config": config}, ensure_ascii=False))
        except TimeoutError:
            await session.close()
            raise RecogniserDown(f"the recogniser at {self.url} did not accept a stream within "
                                 f"{self.connect_timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            await session.close()
            raise RecogniserDown(f"the recogniser at {self.url} is not reachable: {exc}") from None
        return VoskStream(ws, session, self.reply_timeout_s)
