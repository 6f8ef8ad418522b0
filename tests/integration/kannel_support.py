"""The subscriber's side of a real Kannel, for tests: ``fakesmsc`` as the phone.

``/usr/lib/kannel/test/fakesmsc`` connects to bearerbox's fake SMSC port, sends the texts
it is given ("from to text ...") and prints every message Kannel delivers back ("Got
message N: <from to type text>"). It never exits by itself, so it always runs under
``timeout``. Needs the ``kannel`` and ``kannel-extras`` packages: installed with apt-get
when missing and running as root, else the test is skipped (failed in CI).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
SHORT_NUMBER = "1000"
_GOT = re.compile(r"Got message \d+: <(.*)>\s*$")


def kannel_installed() -> bool:
    return all(os.access(p, os.X_OK) for p in (Path("/usr/sbin/bearerbox"), Path("/usr/sbin/smsbox"), FAKESMSC))


def require_kannel() -> None:
    """Install Kannel when missing and allowed; else skip (fail in CI)."""
    if not kannel_installed() and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "kannel", "kannel-extras"],
                       check=False, capture_output=True, timeout=600)
    if not kannel_installed():
        if os.environ.get("CI"):
            pytest.fail("Kannel (kannel, kannel-extras) is required in CI")
        pytest.skip("Kannel is not installed: apt-get install kannel kannel-extras")


@dataclass(frozen=True)
class Delivered:
    """One SMS Kannel delivered to the fake SMSC."""

    sender: str
    receiver: str
    text: str
    udh: str | None = None


def parse_got(line: str) -> Delivered | None:
    """fakesmsc's "Got message N: <from to type [udh] text>", text decoded (ucs-2 and data are UTF-16BE here)."""
    found = _GOT.search(line)
    if found is None:
        return None
    sender, receiver, kind, *rest = found.group(1).split(" ")
    udh = None
    if kind == "udh":
        udh, kind, *rest = rest
    payload = " ".join(rest)
    if kind in ("ucs-2", "data"):
        return Delivered(sender, receiver, unquote_to_bytes(payload.replace("+", " ")).decode("utf-16-be"), udh)
    return Delivered(sender, receiver, payload, udh)


def mo(sender: str, text: str) -> str:
    """A fakesmsc message from a subscriber to our short number (plain text)."""
    return f"{sender} {SHORT_NUMBER} text {text}"


@dataclass
class SmsPhones:
    """``async with SmsPhones(port, [mo(...)]) as phones``: the subscribers' phones for a
    whole scenario. It sends ``messages`` once, then keeps collecting what Kannel delivers
    until the block ends (at most ``limit_s``). With no messages it only listens."""

    fake_smsc_port: int
    messages: list[str] = field(default_factory=list)
    limit_s: float = 300
    delivered: list[Delivered] = field(default_factory=list)
    _proc: asyncio.subprocess.Process | None = None
    _reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SmsPhones:
        sent = self.messages or [mo("+70000000000", "nothing")]
        self._proc = await asyncio.create_subprocess_exec(
            "timeout", str(int(self.limit_s)), str(FAKESMSC), "-H", "127.0.0.1", "-r", str(self.fake_smsc_port),
            "-i", "0.2", "-m", str(len(self.messages)), *sent,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            delivered = parse_got(line.decode("utf-8", "replace"))
            if delivered is not None:
                self.delivered.append(delivered)

    async def to(self, number: str, count: int = 1, timeout: float = 30) -> list[Delivered]:
        """The first ``count`` texts delivered to ``number``; fewer if they did not come in time."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [d for d in self.delivered if d.receiver == number]
            if len(found) >= count or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.1)

    async def __aexit__(self, *_exc: object) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()
        if self._reader is not None:
            await self._reader
