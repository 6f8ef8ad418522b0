"""Headless Chromium driven over the DevTools protocol: open a page, read its DOM as it changes.

``--dump-dom`` shows a page once; a live page must be watched while something else
happens, so the test keeps Chromium running and asks it (``Runtime.evaluate``) until the
page shows what it waits for.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("the agent page browser tests need chromium (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


class Browser:
    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self._proc: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)

    async def open(self, url: str, timeout: float = 30) -> Browser:
        self._proc = await asyncio.create_subprocess_exec(
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}", url,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        async with asyncio.timeout(timeout):
            while not port_file.exists() or not port_file.read_text().strip():
                await asyncio.sleep(0.1)
            port = port_file.read_text().split()[0]
            self._http = aiohttp.ClientSession()
            while True:
                async with self._http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    pages = [t for t in await resp.json() if t.get("type") == "page" and t.get("url", "").startswith(
                        url.split("?")[0])]
                if pages:
                    break
                await asyncio.sleep(0.1)
            self._ws = await self._http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        return self

    async def evaluate(self, expression: str) -> Any:
        assert self._ws is not None
        call_id = next(self._ids)
        await self._ws.send_json({"id": call_id, "method": "Runtime.evaluate",
                                  "params": {"expression": expression, "returnByValue": True}})
        while True:
            message = json.loads((await self._ws.receive()).data)
            if message.get("id") == call_id:
                return message.get("result", {}).get("result", {}).get("value")

    async def until(self, expression: str, timeout: float = 15) -> Any:
        """The expression's value once it is truthy (the page changed); TimeoutError if it never is."""
        async with asyncio.timeout(timeout):
            while not (value := await self.evaluate(expression)):
                await asyncio.sleep(0.1)
            return value

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()
