"""``ivr recogniser``: one Vosk model, shared, behind the Vosk WebSocket protocol.

A process of its own, so a crash or an out-of-memory kill of the recogniser never takes a
call down with it (the controller offers keys and restarts it), and an operator may run
alphacep's vosk-server in its place. The model is loaded once; each stream gets its own
recogniser (a grammar of the menu's words), and decoding runs in a thread pool sized to
the cores (Vosk releases the GIL while it decodes), never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger("ivr.recogniser")
EOF_MESSAGE = "eof"


class VoskEngine:
    """The shared model and the pool that decodes with it."""

    def __init__(self, model_path: Path, threads: int | None = None) -> None:
        from vosk import Model, SetLogLevel  # the speech extra: pip install '.[speech]'

        SetLogLevel(-1)
        self.model = Model(str(model_path))
        self.threads = threads or os.cpu_count() or 1
        self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="vosk")

    def recogniser(self, rate: float, phrases: list[str] | None) -> Any:
        from vosk import KaldiRecognizer

        if phrases:
            rec = KaldiRecognizer(self.model, rate, json.dumps(phrases, ensure_ascii=False))
        else:
            rec = KaldiRecognizer(self.model, rate)
        rec.SetWords(True)
        return rec


class Dither:
    """Kaldi-style dither: a noise floor of about -70 dBFS added to every sample.

    Vosk extracts features without dither, and stretches of exact digital zeros (a
    synthesised caller, Asterisk filling in for a phone that sends no audio in silence)
    throw its short grammars off: measured with the Korean model, two seconds of digital
    silence before a word turned 4/4 correct into 2/4; with this floor, 4/4 at every lead
    (docs/speech.md). A real line's own noise is louder than this, so it changes nothing there.
    """

    SIGMA = 10.0

    def __init__(self, seed: int | None = None) -> None:
        import numpy as np

        self.np = np
        self.rng = np.random.default_rng(seed)

    def __call__(self, pcm: bytes) -> bytes:
        np = self.np
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2").astype(np.float32)
        samples += self.rng.normal(0.0, self.SIGMA, samples.size).astype(np.float32)
        return np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()


def _chunk(rec: Any, dither: Dither, data: bytes) -> str:
    return str(rec.Result() if rec.AcceptWaveform(dither(data)) else rec.PartialResult())


async def stream(request: web.Request) -> web.WebSocketResponse:
    engine: VoskEngine = request.app["engine"]
    ws = web.WebSocketResponse(max_msg_size=1 << 20)
    await ws.prepare(request)
    loop = asyncio.get_running_loop()
    rec: Any = None
    dither = Dither()
    rate, phrases = 16000.0, None
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            try:
                body = json.loads(msg.data)
            except ValueError:
                await ws.close(code=1003, message=b"unreadable JSON")
                break
            if isinstance(body, dict) and "config" in body:
                config = body["config"] or {}
                rate = float(config.get("sample_rate", rate))
                phrases = config.get("phrase_list") or None
                rec = None
                continue
            if isinstance(body, dict) and EOF_MESSAGE in body:
                rec = rec or await loop.run_in_executor(engine.pool, engine.recogniser, rate, phrases)
                await ws.send_str(await loop.run_in_executor(engine.pool, rec.FinalResult))
                await ws.close()
                break
        elif msg.type == WSMsgType.BINARY:
            if rec is None:
                rec = await loop.run_in_executor(engine.pool, engine.recogniser, rate, phrases)
            await ws.send_str(await loop.run_in_executor(engine.pool, _chunk, rec, dither, msg.data))
    return ws


def build_app(engine: VoskEngine) -> web.Application:
    app = web.Application()
    app["engine"] = engine
    app.router.add_get("/", stream)
    return app


def serve(model_path: Path, host: str, port: int, threads: int | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = VoskEngine(model_path, threads)
    log.info("Vosk model %s loaded; %d decoding threads; listening on %s:%d", model_path,
             engine.threads, host, port)
    web.run_app(build_app(engine), host=host, port=port, print=None, access_log=None)
