"""The FastAGI wire: the only module that knows AGI lines.

It covers what panoramisk leaves open: every read has a timeout, the header block is read
with a bound and an EOF check (panoramisk loops forever on a socket closed early), every
argument is quoted so a caller ID or CRM field cannot inject a command, a hangup comes
back as the typed :class:`AgiHangup`, and cancellation is never swallowed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from panoramisk.fast_agi import Application

from ivr.voice.ports import CallEnded, ChannelFailed

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 5.0
MAX_HEADER_BYTES = 64 * 1024
DEFAULT_READ_TIMEOUT_S = 30.0

_RESULT = re.compile(r"^(?P<code>\d{3})(?:[ -](?P<rest>.*))?$")
_FIELD = re.compile(r"result=(?P<result>-?\d+|\S*)(?:\s+\((?P<data>[^)]*)\))?(?P<extra>.*)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AgiError(ChannelFailed):
    """Asterisk answered a command with an error or something unreadable."""


class AgiHangup(AgiError, CallEnded):
    """The caller hung up: the session must end, nothing more can be played."""


class AgiTimeout(AgiError):
    """Asterisk did not answer within the read timeout; the call is given up, not left hanging."""


def quote(value: object) -> str:
    """One AGI argument, safe whatever it holds.

    AGI reads a command up to the newline and splits it on spaces, honouring double quotes
    and backslash escapes. Control characters (newlines above all) are replaced by spaces,
    since no escape survives a line break; backslashes and quotes are escaped.
    """
    text = _CONTROL.sub(" ", str(value))
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


@dataclass(frozen=True)
class AgiResponse:
    code: int
    result: str
    data: str
    raw: str

    @property
    def result_int(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            return 0


def parse_response(line: str) -> AgiResponse:
    m = _RESULT.match(line)
    if not m:
        raise AgiError(f"unreadable AGI response {line!r}")
    code = int(m.group("code"))
    rest = m.group("rest") or ""
    if code == 511:
        raise AgiHangup(f"channel is gone: {line}")
    if code != 200:
        raise AgiError(f"AGI error {code}: {rest}")
    f = _FIELD.search(rest)
    if not f:
        return AgiResponse(code, "", rest, line)
    return AgiResponse(code, f.group("result"), f.group("data") or "", line)


@dataclass(frozen=True)
class AgiRequest:
    """The header block Asterisk sends first, as our own type."""

    headers: Mapping[str, str]

    def get(self, name: str, default: str = "") -> str:
        value = self.headers.get(name, default)
        return default if value == "unknown" else value

    @property
    def script(self) -> str:
        return self.get("agi_network_script")

    @property
    def uniqueid(self) -> str:
        return self.get("agi_uniqueid")

    @property
    def channel(self) -> str:
        return self.get("agi_channel")

    @property
    def caller_number(self) -> str:
        return self.get("agi_callerid")

    @property
    def caller_name(self) -> str:
        return self.get("agi_calleridname")

    @property
    def extension(self) -> str:
        return self.get("agi_extension")

    def arg(self, n: int) -> str:
        return self.get(f"agi_arg_{n}")


def parse_headers(block: bytes) -> AgiRequest:
    headers: dict[str, str] = {}
    for raw in block.decode("utf-8", errors="replace").split("\n"):
        key, sep, value = raw.partition(": ")
        if sep and key.startswith("agi_"):
            headers[key.strip()] = value.strip("\r")
    return AgiRequest(headers)


class AgiChannel:
    """Commands on one call, each answered within ``read_timeout`` seconds."""

    def __init__(self, request: AgiRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 read_timeout: float = DEFAULT_READ_TIMEOUT_S) -> None:
        self.request = request
        self._reader = reader
        self._writer = writer
        self.read_timeout = read_timeout
        self.hung_up = False

    async def command(self, verb: str, *args: object, timeout: float | None = None) -> AgiResponse:
        if self.hung_up:
            raise AgiHangup("the caller already hung up")
        line = " ".join([verb, *(quote(a) for a in args)]) + "\n"
        self._writer.write(line.encode("utf-8"))
        try:
            await self._writer.drain()
            while True:
                async with asyncio.timeout(timeout or self.read_timeout):
                    raw = await self._reader.readline()
                if not raw:
                    self.hung_up = True
                    raise AgiHangup("Asterisk closed the AGI socket")
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if text == "HANGUP":  # asynchronous notice; the real answer follows
                    self.hung_up = True
                    continue
                if text.startswith("100 "):
                    continue
                if text.startswith("520-"):  # usage text runs until "520 End of proper usage."
                    while text and not text.startswith("520 "):
                        async with asyncio.timeout(self.read_timeout):
                            usage = await self._reader.readline()
                        text = usage.decode("utf-8", errors="replace").rstrip("\r\n")
                    raise AgiError(f"AGI usage error for {verb}")
                break
        except TimeoutError:
            raise AgiTimeout(f"no answer to {verb} within {timeout or self.read_timeout:g} s") from None
        except (ConnectionError, OSError) as exc:
            self.hung_up = True
            raise AgiHangup(f"AGI socket failed: {exc}") from None
        try:
            response = parse_response(text)
        except AgiHangup:
            self.hung_up = True
            raise
        return response

    # The commands the controller uses, with their result conventions made explicit.
    async def answer(self) -> None:
        self._check(await self.command("ANSWER"), "ANSWER")

    async def stream_file(self, name: str, escape_digits: str = "") -> str:
        """Play a file; returns the digit that interrupted it, or ""."""
        resp = await self.command("STREAM FILE", name, escape_digits)
        self._check(resp, "STREAM FILE")
        return chr(resp.result_int) if resp.result_int > 0 else ""

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]:
        """Play ``prompt`` and collect up to ``max_digits``; returns (digits, timed_out)."""
        resp = await self.command("GET DATA", prompt, timeout_ms, max_digits,
                                  timeout=self.read_timeout + timeout_ms / 1000 * (max_digits + 1))
        self._check(resp, "GET DATA")
        digits = "" if resp.result in ("", "-1") else resp.result
        return digits, resp.data == "timeout"

    async def wait_for_digit(self, timeout_ms: int) -> str:
        resp = await self.command("WAIT FOR DIGIT", timeout_ms, timeout=self.read_timeout + timeout_ms / 1000)
        self._check(resp, "WAIT FOR DIGIT")
        return chr(resp.result_int) if resp.result_int > 0 else ""

    async def say_number(self, number: int, escape_digits: str = "") -> str:
        resp = await self.command("SAY NUMBER", number, escape_digits)
        self._check(resp, "SAY NUMBER")
        return chr(resp.result_int) if resp.result_int > 0 else ""

    async def say_digits(self, digits: str, escape_digits: str = "") -> str:
        resp = await self.command("SAY DIGITS", digits, escape_digits)
        self._check(resp, "SAY DIGITS")
        return chr(resp.result_int) if resp.result_int > 0 else ""

    async def set_variable(self, name: str, value: object) -> None:
        self._check(await self.command("SET VARIABLE", name, value), "SET VARIABLE")

    async def get_variable(self, name: str) -> str | None:
        resp = await self.command("GET VARIABLE", name)
        return resp.data if resp.result == "1" else None

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command("VERBOSE", message, level)

    def _check(self, resp: AgiResponse, verb: str) -> None:
        if resp.result == "-1":
            # -1 is how most commands report a hangup (or a channel failure): treat both as the end.
            self.hung_up = True
            raise AgiHangup(f"{verb} returned -1 (hangup or channel failure)")


Handler = Callable[[AgiChannel], Awaitable[None]]


class FastAgiServer(Application):
    """panoramisk's route table with a hardened connection handler."""

    def __init__(self, read_timeout: float = DEFAULT_READ_TIMEOUT_S) -> None:
        super().__init__(loop=asyncio.get_running_loop())
        self.read_timeout = read_timeout
        self.live: set[asyncio.Task[None]] = set()

    def add_route(self, path: str, endpoint: Handler) -> None:
        is_async = inspect.iscoroutinefunction(endpoint) or inspect.iscoroutinefunction(
            type(endpoint).__call__)
        if not is_async:
            # panoramisk would wrap it with asyncio.coroutine, which Python 3.11 removed
            raise TypeError(f"FastAGI route {path!r} needs an async def handler")
        if path in self._route:
            raise ValueError(f"FastAGI route {path!r} already exists")
        self._route[path] = endpoint

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.live.add(task)
        peer = writer.get_extra_info("peername")
        try:
            try:
                async with asyncio.timeout(HEADER_TIMEOUT_S):
                    block = await reader.readuntil(b"\n\n")
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
                log.warning("FastAGI connection from %s sent no complete header block: %s", peer, exc)
                return
            if len(block) > MAX_HEADER_BYTES:
                log.warning("FastAGI header block from %s too large (%d bytes)", peer, len(block))
                return
            request = parse_headers(block)
            route = self._route.get(request.script.split("?")[0].strip("/"))
            if route is None:
                log.error("no FastAGI route for %r (call %s)", request.script, request.uniqueid)
                return
            channel = AgiChannel(request, reader, writer, self.read_timeout)
            try:
                await route(channel)
            except Exception:
                log.exception("FastAGI route %r failed (call %s)", request.script, request.uniqueid)
        finally:
            if task is not None:
                self.live.discard(task)
            writer.close()
