"""Two ways to get a call's audio out of Asterisk for the recogniser, measured side by side.

- ``rtp``: ARI externalMedia over chan_rtp, slin16 RTP to a UDP socket (what the ARI driver uses)
- ``websocket``: ARI externalMedia over chan_websocket (connection_type server: we connect
  to Asterisk's HTTP server at /media/<id>), slin16 in binary frames

Each round puts K externalMedia channels in K mixing bridges, plays a sound (tt-monkeys, over and over) into
every bridge, and receives for S seconds; the two paths alternate, so the machine's noise
hits both. Reports audio received (in seconds of audio per second of wall time, per
stream: 1.0 = real time), the p99 gap between frames, Asterisk's CPU and ours per
stream-second. (AudioSocket is left out: it carries 8 kHz only, and the same words at
8 kHz are recognised 2 times in 5 against 5 in 5 at 16 kHz.)

  .venv/bin/python bench/bench_audio_paths.py --streams 20 --seconds 10 --rounds 2   # as root, Asterisk up
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ivr.settings import load_settings  # noqa: E402
from ivr.voice.ari.audio import rtp_payload  # noqa: E402

APP = "ivr-bench-audio"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stream:
    def __init__(self) -> None:
        self.bytes = 0
        self.arrivals: list[float] = []

    def got(self, payload: bytes) -> None:
        self.bytes += len(payload)
        self.arrivals.append(time.monotonic())


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        payload = rtp_payload(data)
        if payload:
            self.stream.got(payload)


async def run_path(path: str, base: str, headers: dict[str, str], count: int, seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    streams = [Stream() for _ in range(count)]
    cleanups: list = []
    tasks: list[asyncio.Task[None]] = []
    async with aiohttp.ClientSession(headers=headers) as http:
        events = await http.ws_connect(f"{base.replace('http', 'ws')}/ari/events?app={APP}")
        try:
            for i, stream in enumerate(streams):
                cid, bid = f"bench-{path}-{i}", f"bench-{path}-bridge-{i}"
                params = {"app": APP, "format": "slin16", "channelId": cid}
                if path == "rtp":
                    transport, _ = await loop.create_datagram_endpoint(lambda s=stream: _Udp(s),
                                                                       local_addr=("127.0.0.1", 0))
                    cleanups.append(transport.close)
                    params["external_host"] = f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
                else:
                    params.update(external_host="INCOMING", transport="websocket", encapsulation="none",
                                  connection_type="server")
                async with http.post(f"{base}/ari/channels/externalMedia", params=params) as r:
                    channel = await r.json()
                if path == "websocket":
                    conn = channel["channelvars"]["MEDIA_WEBSOCKET_CONNECTION_ID"]
                    ws = await http.ws_connect(f"{base.replace('http', 'ws')}/media/{conn}")
                    tasks.append(asyncio.create_task(_read_ws(ws, stream)))
                await http.post(f"{base}/ari/bridges", params={"type": "mixing", "bridgeId": bid})
                await http.post(f"{base}/ari/bridges/{bid}/addChannel", params={"channel": cid})
                await http.post(f"{base}/ari/bridges/{bid}/play", params={"media": ",".join(["sound:tt-monkeys"] * 20)})
                cleanups.append((cid, bid))
            asterisk = int(Path("/var/lib/ivr/asterisk-root/run/asterisk/asterisk.pid").read_text())
            a0, o0, t0 = cpu_seconds(asterisk), time.process_time(), time.monotonic()
            for s in streams:
                s.bytes, s.arrivals = 0, []
            await asyncio.sleep(seconds)
            wall = time.monotonic() - t0
            a_cpu, o_cpu = cpu_seconds(asterisk) - a0, time.process_time() - o0
        finally:
            for task in tasks:
                task.cancel()
            for item in cleanups:
                if callable(item):
                    item()
                else:
                    cid, bid = item
                    await http.delete(f"{base}/ari/channels/{cid}")
                    await http.delete(f"{base}/ari/bridges/{bid}")
            await events.close()
    gaps = sorted(b - a for s in streams for a, b in zip(s.arrivals, s.arrivals[1:], strict=False))
    return {"realtime": statistics.mean(s.bytes / 32000 / wall for s in streams),
            "gap_p99_ms": gaps[int(len(gaps) * 0.99)] * 1000 if gaps else 0.0,
            "asterisk_ms": a_cpu / (count * wall) * 1000, "ours_ms": o_cpu / (count * wall) * 1000}


async def _read_ws(ws: aiohttp.ClientWebSocketResponse, stream: Stream) -> None:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.BINARY:
            stream.got(msg.data)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings = load_settings()
    base = settings.ari.local_url
    token = base64.b64encode(f"{settings.ari.user}:{settings.ari.password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    results: dict[str, list[dict[str, float]]] = {"rtp": [], "websocket": []}
    for _ in range(args.rounds):
        for path in results:
            results[path].append(asyncio.run(run_path(path, base, headers, args.streams, args.seconds)))
    print(f"{args.streams} streams × {args.seconds:g} s, {args.rounds} rounds, alternating")
    for path, runs in results.items():
        avg = {k: statistics.mean(r[k] for r in runs) for k in runs[0]}
        print(f"{path:10s} audio/real time {avg['realtime']:.3f}  frame gap p99 {avg['gap_p99_ms']:.1f} ms  "
              f"Asterisk CPU {avg['asterisk_ms']:.2f} ms/stream-s  ours {avg['ours_ms']:.2f} ms/stream-s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
