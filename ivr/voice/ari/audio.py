"""The caller's voice for the recogniser: a snoop of what they send, out over RTP externalMedia.

Set up on the first spoken menu of a call and kept until it ends: a snoop channel on the
caller (``spy=in``: their voice only, never our prompt, so barge-in is not triggered by
the IVR hearing itself), an externalMedia channel sending ``slin16`` RTP to a UDP socket
of ours, and a mixing bridge joining the two. Why RTP rather than chan_websocket or
AudioSocket is measured in docs/speech.md. RTP carries L16 in network byte order; frames
are turned into little-endian PCM here, at the edge.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from array import array
from collections.abc import Awaitable, Callable

from ivr.voice.ari.client import AriError, AriRest

log = logging.getLogger(__name__)

RATE = 16000
FORMAT = "slin16"
QUEUE_FRAMES = 500  # 10 s of 20 ms frames: a listener that stalls loses the oldest, never blocks the socket
SNOOP_ARG = "ivr-snoop"
MEDIA_ARG = "ivr-media"
AUX_PREFIX = "ivr-aux-"


def aux_owner(channel_id: str) -> str | None:
    """The call a snoop or media channel of ours belongs to (see :attr:`AriAudio.ids`), else None."""
    if not channel_id.startswith(AUX_PREFIX):
        return None
    return channel_id[len(AUX_PREFIX):].rpartition("-")[0]


def rtp_payload(packet: bytes) -> bytes | None:
    """The payload of an RTP packet (RFC 3550), or None when it is not one."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return None
    offset = 12 + (packet[0] & 0x0F) * 4
    if packet[0] & 0x10 and len(packet) >= offset + 4:  # header extension
        offset += 4 + int.from_bytes(packet[offset + 2:offset + 4], "big") * 4
    end = len(packet)
    if packet[0] & 0x20:  # padding
        end -= packet[-1]
    return packet[offset:end] if end > offset else None


def be16_to_le(payload: bytes) -> bytes:
    samples = array("h")
    samples.frombytes(payload[: len(payload) // 2 * 2])
    if sys.byteorder == "little":
        samples.byteswap()
    return samples.tobytes()


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, audio: AriAudio) -> None:
        self.audio = audio

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        payload = rtp_payload(data)
        if payload:
            self.audio.frame(be16_to_le(payload))


class AriAudio:
    """CallAudio for one ARI call."""

    def __init__(self, client: AriRest, app: str, channel_id: str,
                 entered: Callable[[str], Awaitable[None]], host: str = "127.0.0.1") -> None:
        self.client = client
        self.entered = entered  # waits for a channel's StasisStart: only then may it join a bridge
        self.app = app
        self.channel_id = channel_id
        self.host = host
        self._transport: asyncio.DatagramTransport | None = None
        self._current: asyncio.Queue[bytes | None] | None = None
        self._created: list[str] = []  # channels we made, to hang up at the end
        self._bridge: str | None = None
        self._lock = asyncio.Lock()

    @property
    def rate(self) -> int:
        return RATE

    @property
    def ids(self) -> tuple[str, str, str]:
        base = f"{AUX_PREFIX}{self.channel_id}"
        return f"{base}-snoop", f"{base}-media", f"{base}-bridge"

    def frame(self, pcm: bytes) -> None:
        queue = self._current
        if queue is None:
            return
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(pcm)

    async def listen(self) -> asyncio.Queue[bytes | None]:
        async with self._lock:
            if self._transport is None:
                await self._setup()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_FRAMES)
        if self._current is not None:
            self._current.put_nowait(None)
        self._current = queue
        return queue

    def stop_listening(self, frames: asyncio.Queue[bytes | None]) -> None:
        if self._current is frames:
            self._current = None

    async def _setup(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(self), local_addr=(self.host, 0))
        self._transport = transport
        port = transport.get_extra_info("sockname")[1]
        snoop, media, bridge = self.ids
        try:
            await self.client.post("channels/externalMedia", app=self.app, external_host=f"{self.host}:{port}",
                                   format=FORMAT, channelId=media, data=MEDIA_ARG, direction="in")
            self._created.append(media)
            await self.client.post(f"channels/{self.channel_id}/snoop", spy="in", app=self.app, appArgs=SNOOP_ARG,
                                   snoopId=snoop)
            self._created.append(snoop)
            await self.client.post("bridges", type="mixing", bridgeId=bridge, name=bridge)
            self._bridge = bridge
            await self.entered(snoop)
            await self.entered(media)
            await self.client.post(f"bridges/{bridge}/addChannel", channel=[snoop, media])
        except AriError:
            await self.close()
            raise

    async def close(self) -> None:
        if self._current is not None:
            self._current.put_nowait(None)
            self._current = None
        for channel in self._created:
            try:
                await self.client.delete(f"channels/{channel}")
            except AriError:
                pass
        self._created.clear()
        if self._bridge is not None:
            try:
                await self.client.delete(f"bridges/{self._bridge}")
            except AriError:
                pass
            self._bridge = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
