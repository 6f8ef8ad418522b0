"""A thin ARI client on aiohttp: REST calls and the application's events WebSocket.

Our own, because none of the Python ARI clients fits (docs/ari.md): ``ari-py`` is
Python 2 only, ``ari-client`` 0.9.0 has no reconnect and swallows every exception in its
listen loop, ``asyncari`` stops when its socket closes, ``aioari`` is unmaintained. This
module knows ARI's URLs and JSON and nothing of calls; the reconnect policy lives in
:mod:`ivr.voice.ari.app`, which owns it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp

from ivr.voice.ports import ChannelFailed

REQUEST_TIMEOUT_S = 5.0
CONNECTED = "IvrEventsConnected"


class AriError(ChannelFailed):
    """ARI refused a request or could not be reached."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class AriNotFound(AriError):
    """The channel, playback or bridge is gone (404): for a channel, the caller hung up."""


class AriDisconnected(AriError):
    """The events WebSocket closed or never opened."""


class AriRest(Protocol):
    """The REST half of ARI, as the driver uses it (the events socket is the application's own)."""

    async def request(self, method: str, path: str, params: Mapping[str, object] | None = None,
                      body: Mapping[str, Any] | None = None) -> Any: ...

    async def get(self, path: str, **params: object) -> Any: ...

    async def post(self, path: str, **params: object) -> Any: ...

    async def delete(self, path: str, **params: object) -> Any: ...


class AriLink(AriRest, Protocol):
    """REST and the application's events: what the Stasis application needs."""

    def events(self, app: str) -> AsyncIterator[dict[str, Any]]: ...


class AriClient:
    def __init__(self, base_url: str, user: str, password: str, *,
                 request_timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}"}
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def request(self, method: str, path: str, params: Mapping[str, object] | None = None,
                      body: Mapping[str, Any] | None = None) -> Any:
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        url = f"{self.base_url}/ari/{path.lstrip('/')}"
        try:
            async with self._http().request(method, url, params=query, json=body) as resp:
                text = await resp.text()
                if resp.status == 404:
                    raise AriNotFound(f"{method} {path}: {_message(text)}", 404)
                if resp.status >= 400:
                    raise AriError(f"{method} {path}: HTTP {resp.status} {_message(text)}", resp.status)
                return json.loads(text) if text.strip() else None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise AriError(f"{method} {path}: ARI not reachable ({exc or type(exc).__name__})") from None

    async def get(self, path: str, **params: object) -> Any:
        return await self.request("GET", path, params)

    async def post(self, path: str, **params: object) -> Any:
        return await self.request("POST", path, params)

    async def delete(self, path: str, **params: object) -> Any:
        return await self.request("DELETE", path, params)

    async def events(self, app: str) -> AsyncIterator[dict[str, Any]]:
        """The application's events, until the socket closes (then AriDisconnected).

        The first item is our own ``{"type": CONNECTED}``: the socket is open, so Asterisk
        has (re)registered the application and the caller may ask what is in it."""
        ws_url = self.base_url.replace("http", "ws", 1) + "/ari/events"
        try:
            ws = await self._http().ws_connect(ws_url, params={"app": app, "subscribeAll": "false"},
                                               heartbeat=10.0, timeout=aiohttp.ClientWSTimeout(ws_close=2.0))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise AriDisconnected(f"ARI events for {app!r} not available: {exc or type(exc).__name__}") from None
        try:
            yield {"type": CONNECTED}
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    try:
                        event = json.loads(msg.data)
                    except ValueError:
                        continue
                    if isinstance(event, dict):
                        yield event
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                    break
        finally:
            await ws.close()
        raise AriDisconnected(f"ARI events socket for {app!r} closed")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            # aiohttp's connector closes its transports on the next loop turn
            await asyncio.sleep(0)


def _param(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _message(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    return str(body.get("message", body)) if isinstance(body, dict) else str(body)[:200]
