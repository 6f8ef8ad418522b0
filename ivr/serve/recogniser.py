"""The recogniser process ``ivr serve`` keeps running: started, watched, restarted with backoff.

Speech runs in a process of its own (``ivr recogniser``) so that a crash or an
out-of-memory kill there costs the callers spoken input for a moment, never the call:
the voice flow offers keys at once, and this supervisor starts a new recogniser.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import sys
from pathlib import Path

from ivr.backoff import Backoff

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: a controller killed with SIGKILL takes its recogniser along (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class RecogniserProcess:
    def __init__(self, model: Path, host: str, port: int, threads: int = 0) -> None:
        self.model = model
        self.host = host
        self.port = port
        self.threads = threads
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    async def run(self) -> None:
        """Keep one recogniser process alive until cancelled."""
        backoff = Backoff()
        try:
            while True:
                args = [sys.executable, "-m", "ivr", "recogniser", "--model", str(self.model), "--host", self.host,
                        "--port", str(self.port), "--threads", str(self.threads)]
                self.process = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL,
                                                                    preexec_fn=_die_with_parent)
                log.info("recogniser started (pid %d) on %s", self.process.pid, self.url)
                code = await self.process.wait()
                delay = backoff.next_delay()
                log.error("recogniser exited with %s; spoken input falls back to keys; restarting in %.1f s",
                          code, delay)
                await asyncio.sleep(delay)
        finally:
            await self.stop()

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
