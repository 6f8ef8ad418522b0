"""Callbacks on the real Asterisk: how fast a freed agent reaches the customer, and whether anyone's place moves.

``ring``: N callbacks wait in ``support`` while the agents are paused, as in a busy hour.
The bench unpauses one agent (the moment it "becomes free", AMI ``QueuePause``), times
until the customer's phone (SIPp on the trunk's far end) receives the INVITE, and pauses
it again: app_queue offering the head place (its ``AgentCalled`` event splits the time),
the agent's phone answering, the whisper, ``ChannelRedirect`` and ``Dial``. Two agents
take turns so neither is unpaused inside its wrap-up (queues.conf ``wrapuptime``).

``order``: callers (SIPp, through the IVR: main menu, 0, the queue) and callbacks (booked
by USSD ``*111#`` 7, the quickest real path) join ``support`` one per second, interleaved
at random, while every agent is paused. Once all are in, the queue's own order
(``QueueStatus``) is compared with the order they asked: a voice caller's by its
``QueueCallerJoin`` event, a callback's by its request time. Then three agents serve them
all, and the order app_queue offered them to agents (``AgentCalled``) is compared too.
The position error of one caller is its place in that order minus its place by asking.

Usage (as root; `ivr asterisk up`; no controller running, the bench starts its own):
  .venv/bin/python bench/bench_callbacks.py ring --samples 60
  .venv/bin/python bench/bench_callbacks.py order --callers 200 --callbacks 70
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from ivr.harness import dtmf_script, sipp
from ivr.harness.agent_phone import AgentPhone
from ivr.settings import Settings, load_settings
from ivr.voice.ami import AmiClient
from ivr.voice.queue_monitor import parse_queue_status

REPO = Path(__file__).resolve().parent.parent
QUEUE = "support"
AGENTS = ("agent1", "agent2", "agent3")
TRUNK_PEER_PORT = 5070


# -- the controller and its inputs ---------------------------------------------------------------

class Controller:
    """``ivr serve`` with its own journey, CRM and a policy that never offers callbacks on calls."""

    def __init__(self, settings: Settings, state: Path) -> None:
        self.settings = settings
        policy = state / "callbacks.yaml"
        policy.write_text("defaults:\n  offer_after_s: -1\n  max_waiting: 1000\n  ring_s: 20\n  attempts: 1\n")
        self.env = {**os.environ, "IVR_JOURNEY_SQLITE_PATH": str(state / "journey.sqlite"),
                    "IVR_CRM_SQLITE_PATH": str(state / "crm.sqlite"), "IVR_ROUTING_CALLBACKS": str(policy),
                    "IVR_SPEECH_MODEL": ""}
        self.log = open(state / "serve.log", "ab")  # noqa: SIM115 - open for the process's life
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Controller:
        self.proc = subprocess.Popen([sys.executable, "-m", "ivr", "serve"], stdout=self.log, stderr=self.log,
                                     env=self.env, cwd=REPO)
        url = f"http://{self.settings.http.host}:{self.settings.http.port}/healthz"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        raise SystemExit("ivr serve did not become healthy within 20 s")

    def __exit__(self, *_exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def callbacks(self) -> list[dict[str, object]]:
        out = subprocess.run([sys.executable, "-m", "ivr", "callbacks", "list", "--all", "--json"], env=self.env,
                             capture_output=True, text=True, check=True, cwd=REPO)
        return list(json.loads(out.stdout))


def book_by_ussd(settings: Settings, number: str) -> None:
    """A callback asked for by USSD: *111#, then 7 (the main menu's "Call me back")."""
    session = f"bench-{number}"
    for text in ("", "7"):
        body = urllib.parse.urlencode({"sessionId": session, "serviceCode": "*111#", "phoneNumber": number,
                                       "networkCode": "25001", "text": text}).encode()
        req = urllib.request.Request(f"http://{settings.http.host}:{settings.http.port}/ussd", data=body,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            answer = resp.read().decode()
    if "call you back" not in answer:
        raise SystemExit(f"callback for {number} not booked: {answer!r}")


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def tail10(number: str) -> str:
    return re.sub(r"\D", "", number)[-10:]


def ami_client(settings: Settings) -> AmiClient:
    return AmiClient(settings.ami.local_host, settings.ami.port, settings.ami.user, settings.ami.secret)


async def pause(ami: AmiClient, agent: str, paused: bool) -> None:
    await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{agent}", "Queue": QUEUE,
                      "Paused": "true" if paused else "false", "Reason": "bench"})


async def entries(ami: AmiClient) -> list[Mapping[str, object]]:
    _, listed = parse_queue_status(await ami.queue_status())
    return [{"channel": e.channel, "uniqueid": e.uniqueid} for e in listed.get(QUEUE, [])]


async def leave_clean(settings: Settings) -> None:
    """Agents unpaused and no place left in the queue: the next run (or test) starts as Asterisk does."""
    async with ami_client(settings) as ami:
        for agent in AGENTS:
            await pause(ami, agent, False)
        await ami.action({"Action": "Hangup", "Channel": "/^Local\\/cb/"})


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# -- ring: agent free -> customer's phone rings --------------------------------------------------

async def ring(settings: Settings, samples: int) -> dict[str, object]:
    target = f"127.0.0.1:{settings.sip.port}"
    offered_at: list[float] = []  # AgentCalled: app_queue rings the freed agent for the place
    total: list[float] = []
    pickup: list[float] = []

    def on_event(event: Mapping[str, str]) -> None:
        if event.get("Event") == "AgentCalled" and event.get("Queue") == QUEUE:
            offered_at.append(time.time())

    async with ami_client(settings) as ami, \
            AgentPhone("customer", "", target, register=False, port=TRUNK_PEER_PORT, calls=samples, talk_s=1.0,
                       ring_timeout_s=samples * 30) as customer, \
            AgentPhone("agent1", settings.sip.agent_password, target, calls=samples, talk_s=30,
                       ring_timeout_s=samples * 30, expires_s=3600), \
            AgentPhone("agent2", settings.sip.agent_password, target, calls=samples, talk_s=30,
                       ring_timeout_s=samples * 30, expires_s=3600):
        ami.subscribe(on_event)
        for agent in AGENTS:
            await pause(ami, agent, True)
        for i in range(samples):  # every place waits in the queue, as in a busy hour
            await asyncio.to_thread(book_by_ussd, settings, f"+7999300{i:04d}")
        while sum(str(e["channel"]).startswith("Local/cb") for e in await entries(ami)) < samples:
            await asyncio.sleep(0.2)
        await asyncio.sleep(10)  # past the announcement every entry hears on joining
        for i in range(samples):
            agent = AGENTS[i % 2]  # the other one is in its wrap-up
            freed = time.time()
            await pause(ami, agent, False)
            deadline = time.monotonic() + 120
            while len(customer.invite_times()) <= i:
                if time.monotonic() > deadline:
                    raise SystemExit(f"sample {i}: the customer's phone did not ring within 120 s")
                await asyncio.sleep(0.02)
            await pause(ami, agent, True)
            total.append(customer.invite_times()[i] - freed)
            pickup.append(offered_at[i] - freed)
            await customer.callers(i + 1, timeout=30)
            await asyncio.sleep(1.5)  # the conversation (1 s) ends before the next agent is freed
    rest = [t - p for t, p in zip(total, pickup, strict=True)]
    return {"samples": len(total),
            "free_to_customer_ringing": {"p50_s": quantile(total, 0.5), "p99_s": quantile(total, 0.99),
                                         "min_s": min(total), "max_s": max(total)},
            "free_to_agent_rung (app_queue)": {"p50_s": quantile(pickup, 0.5), "p99_s": quantile(pickup, 0.99)},
            "agent_rung_to_customer_ringing (answer, whisper, dial)": {"p50_s": quantile(rest, 0.5),
                                                                       "p99_s": quantile(rest, 0.99)}}


# -- order: places kept over a mixed run ---------------------------------------------------------

async def order(settings: Settings, controller: Controller, callers: int, callbacks: int,
                seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    voice = [f"7999400{i:04d}" for i in range(callers - callbacks)]
    booked = [f"+7999500{i:04d}" for i in range(callbacks)]
    window_s = float(callers)  # about one arrival a second, voice and callbacks interleaved at random
    booking_at = sorted(rng.uniform(0, window_s) for _ in booked)
    joined: dict[str, float] = {}  # tail10 -> QueueCallerJoin time (voice)
    offered: list[str] = []  # tail10, in the order app_queue offered them to agents
    uid_number: dict[str, str] = {}

    def on_event(event: Mapping[str, str]) -> None:
        name = event.get("Event")
        if event.get("Queue") != QUEUE:
            return
        number = tail10(event.get("CallerIDNum", ""))
        if name == "QueueCallerJoin":
            joined.setdefault(number, time.time())
            uid_number[event.get("Uniqueid", "")] = number
        elif name == "AgentCalled" and number not in offered:
            offered.append(number)

    target = f"127.0.0.1:{settings.sip.port}"
    async with ami_client(settings) as ami:
        ami.subscribe(on_event)
        for agent in AGENTS:
            await pause(ami, agent, True)
        # One SIPp places every voice caller (each its own number, through the IVR: 0, the
        # queue): a SIPp process per caller would spend the machine's CPU polling.
        voice_run = asyncio.create_task(sipp.run_sipp(sipp.SippCall(
            target=target, dnis="100", caller=voice[0], caller_name="bench", call_tag="bench-order",
            steps=dtmf_script.parse("0"), delay_s=9, hold_s=1800, calls=len(voice),
            rate=len(voice) / window_s, max_concurrent=len(voice), timeout_s=window_s + 2400, callers=tuple(voice))))
        started = time.monotonic()
        for at, number in zip(booking_at, booked, strict=True):
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            await asyncio.to_thread(book_by_ussd, settings, number)
        say(f"all {callers} asked; waiting for them in the queue")
        deadline = time.monotonic() + 120
        while len(await entries(ami)) < callers and time.monotonic() < deadline:
            await asyncio.sleep(1)
        await asyncio.sleep(3)
        queued = await entries(ami)
        say(f"{len(queued)} in the queue; reading the callbacks")
        requested = {tail10(str(c["number"])): float(str(c["requested_at"])) for c in controller.callbacks()}
        asked_at = {**{n: t for n, t in joined.items() if n not in requested}, **requested}
        by_asking = sorted(asked_at, key=lambda n: asked_at[n])
        in_queue = [uid_number.get(str(e["uniqueid"])) or tail10(str(e["channel"])) for e in queued]
        snapshot_errors = [in_queue.index(n) - by_asking.index(n) for n in by_asking if n in in_queue]

        serve_s = 0.0
        async with AgentPhone("customer", "", target, register=False, port=TRUNK_PEER_PORT, calls=callbacks,
                              talk_s=1.0, ring_timeout_s=3600) as customer:
            # An agent stays on a call for at most 7 s: past the whisper and the customer's answer
            # (the customer hangs up after 1 s); with a caller who waited, 7 s of talk.
            phones = [AgentPhone(a, settings.sip.agent_password, target, calls=callers, talk_s=7.0,
                                 ring_timeout_s=3600, expires_s=3600) for a in AGENTS]
            try:  # every agent phone goes, whatever happens: a stray one would answer the next run's calls
                for phone in phones:
                    await phone.__aenter__()
                say("agents registered; serving")
                t0 = time.monotonic()
                for agent in AGENTS:
                    await pause(ami, agent, False)
                deadline = time.monotonic() + 1800
                while await entries(ami) and time.monotonic() < deadline:
                    await asyncio.sleep(1)
                serve_s = time.monotonic() - t0
                await asyncio.sleep(3)  # the last offers answered
                try:
                    await customer.callers(callbacks, timeout=60)
                except Exception as exc:  # noqa: BLE001 - reported with the rest
                    say(f"the customer's phone: {exc}")
            finally:
                for phone in phones:
                    if phone._proc is not None and phone._proc.returncode is None:
                        phone._proc.kill()
                    await phone.__aexit__()
        await asyncio.sleep(5)
        voice_run.cancel()
        try:
            sipp_stdout = (await voice_run).stdout
        except asyncio.CancelledError:
            sipp_stdout = ""
    served_errors = [offered.index(n) - by_asking.index(n) for n in by_asking if n in offered]
    outcomes = [str(c["state"]) for c in controller.callbacks()]
    missing = sorted(set(by_asking) ^ set(in_queue))
    return {"callers": callers, "callbacks": callbacks, "in_queue": len(queued), "offered": len(offered),
            "joined_but_not_both_listed": missing,
            "voice_failed": re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", sipp_stdout)[-1:],
            "snapshot_max_abs_error": max(map(abs, snapshot_errors), default=None),
            "snapshot_moved": sum(1 for e in snapshot_errors if e),
            "served_max_abs_error": max(map(abs, served_errors), default=None),
            "served_moved": sum(1 for e in served_errors if e),
            "serve_s": round(serve_s, 1), "callbacks_completed": outcomes.count("completed"),
            "callbacks_other": sorted(set(outcomes) - {"completed"})}


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    r = sub.add_parser("ring")
    r.add_argument("--samples", type=int, default=60)
    o = sub.add_parser("order")
    o.add_argument("--callers", type=int, default=200)
    o.add_argument("--callbacks", type=int, default=70)
    o.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="ivr-bench-callbacks-") as tmp, Controller(settings, Path(tmp)) as ctl:
        try:
            if args.what == "ring":
                result = asyncio.run(ring(settings, args.samples))
            else:
                result = asyncio.run(order(settings, ctl, args.callers, args.callbacks, args.seed))
        finally:
            asyncio.run(leave_clean(settings))
        print(json.dumps(result, indent=2))
        (Path(tmp) / "serve.log").replace(Path(f"/tmp/bench-callbacks-{args.what}-serve.log"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
