"""Place one real call through Asterisk and report what happened (``ivr call``, ``place_call``).

Two transports, one record:
- ``sipp``: SIPp dials the demo trunk over PJSIP and sends RFC 2833 DTMF, like a carrier.
- ``ami``: AMI Originate of a Local channel whose caller half is the caller robot.
The record is built from AMI events only, i.e. from what Asterisk says happened.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ivr.errors import IvrError
from ivr.harness import dtmf_script, sipp
from ivr.harness.record import CallRecord, fill_from_events, find_linkedid_by_tag
from ivr.settings import Settings, reachable_host
from ivr.voice.ami import AmiClient

SETTLE_S = 0.3  # events that trail the hangup (e.g. the robot half's own Hangup)


@dataclass(frozen=True)
class CallRequest:
    caller: str = "79990001122"  # not a demo customer: the generic menu
    dnis: str = "100"
    keys: str = ""
    transport: str = "sipp"
    caller_name: str = ""
    delay_s: float = 2.0
    hold_s: float = 6.0
    speech: str = ""
    timeout_s: float = 0.0  # 0 = delay + keys + hold + 30 s

    def deadline_s(self) -> float:
        return self.timeout_s or self.delay_s + dtmf_script.duration(dtmf_script.parse(self.keys)) + self.hold_s + 30


async def place_call(settings: Settings, request: CallRequest, *, via: str = "",
                     asterisks: Sequence[Settings] = ()) -> CallRecord:
    """One call, followed on AMI. ``via``: send the INVITE there (host:port: a SIP proxy in
    front, Kamailio) instead of to ``settings``' Asterisk; ``asterisks``: every Asterisk
    that may take it (default: ``settings``' own), whose AMI events are all followed."""
    steps = dtmf_script.parse(request.keys)
    tag = f"ivrcall-{uuid.uuid4().hex[:12]}"
    record = CallRecord(request.transport, request.caller, request.dnis, request.keys, tag)
    nodes = list(asterisks) or [settings]
    events: dict[str, list[Mapping[str, str]]] = {}
    amis = [AmiClient(n.ami.local_host, n.ami.port, n.ami.user, n.ami.secret) for n in nodes]
    ended = asyncio.Event()
    watch: dict[str, str] = {}
    try:
        for ami in amis:
            await ami.connect()
            ami.subscribe(_collector(events.setdefault(f"{ami.host}:{ami.port}", []), watch, ended))
    except BaseException:
        for ami in amis:
            ami.close()
        raise
    ami = amis[0]
    started = time.monotonic()
    try:
        if request.transport == "ami":
            await _originate(ami, settings, request, steps, tag, watch)
            ok = await _wait(ended, request.deadline_s())
        elif request.transport == "sipp":
            run = asyncio.create_task(sipp.run_sipp(sipp.SippCall(
                target=via or f"{reachable_host(settings.sip.bind)}:{settings.sip.port}", dnis=request.dnis,
                caller=request.caller, caller_name=request.caller_name, call_tag=tag,
                steps=steps, delay_s=request.delay_s, hold_s=request.hold_s,
                timeout_s=request.deadline_s())))
            result = await run
            record.transport_result = {"sipp_exit_code": result.exit_code,
                                       "hung_up_by_asterisk_during_script": result.only_early_bye}
            if not result.ok and not result.only_early_bye:
                record.errors.append(f"sipp exited {result.exit_code}: {result.errors_log.strip()[-800:]}")
            found = next(((node, hit) for node, seen in events.items()
                          if (hit := find_linkedid_by_tag(seen, f"{tag}-1"))), None)
            if found:
                record.asterisk, watch["ivr"] = found[0], found[1][0]
                ok = ended.is_set() or any(e.get("Event") == "Hangup" and e.get("Uniqueid") == watch["ivr"]
                                           for e in events[record.asterisk]) or await _wait(ended, 5)
            else:
                ok = False
                record.errors.append("Asterisk never saw the call (no channel carried its X-IVR-Call-Tag)")
        else:
            raise IvrError(f"unknown transport {request.transport!r}", hint="use sipp or ami")
        await asyncio.sleep(SETTLE_S)
        if not ok and watch.get("ivr"):
            record.errors.append(f"the call did not end within {request.deadline_s():.0f} s")
    finally:
        for each in amis:
            each.close()
    record.duration_s = time.monotonic() - started
    if watch.get("ivr"):
        record.asterisk = record.asterisk or f"{ami.host}:{ami.port}"
        fill_from_events(record, events[record.asterisk], watch["ivr"])
    return record


def _collector(events: list[Mapping[str, str]], watch: Mapping[str, str],
               ended: asyncio.Event) -> Callable[[Mapping[str, str]], None]:
    def on_event(ev: Mapping[str, str]) -> None:
        events.append(ev)
        if ev.get("Event") == "Hangup" and ev.get("Uniqueid") and ev.get("Uniqueid") == watch.get("ivr"):
            ended.set()
    return on_event


#: Asterisk copies an Originate's CallerID into a 256-byte buffer before parsing it: a longer
#: value loses its ``<number>``. The quoted name is kept well inside that.
MAX_CALLER_NAME_BYTES = 200


def originate_caller_id(name: str | None, number: str) -> str:
    """The AMI ``CallerID`` header for ``name`` and ``number``, quoted as SIP quotes a display name.

    A line break would end the AMI header (and start a forged one), a quote or backslash would
    move the end of the name, and a long name would push the number out of Asterisk's buffer:
    so control characters become spaces, quotes and backslashes are escaped, and the name is
    cut (at a whole character) to :data:`MAX_CALLER_NAME_BYTES`. The number keeps only what a
    dial string may hold.
    """
    digits = re.sub(r"[^0-9A-Za-z+*#]", "", number)
    if not name:
        return digits
    clean = re.sub(r"[\x00-\x1f\x7f]", " ", name[:MAX_CALLER_NAME_BYTES]).strip()
    while len(sipp.sip_display_name(clean).encode()) > MAX_CALLER_NAME_BYTES:
        clean = clean[:-1]
    return f"{sipp.sip_display_name(clean)} <{digits}>" if clean else digits


async def _originate(ami: AmiClient, settings: Settings, request: CallRequest,
                     steps: tuple[dtmf_script.Step, ...], tag: str, watch: dict[str, str]) -> None:
    robot_id, ivr_id = f"{tag}-robot", f"{tag}-ivr"
    watch["ivr"] = ivr_id
    variables = {
        "ROBOT_DELAY": f"{request.delay_s:g}",
        "ROBOT_HOLD": f"{request.hold_s:g}",
        "ROBOT_KEYS": dtmf_script.as_senddtmf(steps),
        "ROBOT_SPEECH": request.speech,
        "__IVR_CALL_TAG": tag,
    }
    caller_id = originate_caller_id(request.caller_name, request.caller)
    await ami.action({
        "Action": "Originate",
        "Channel": f"Local/{request.dnis}@inbound-numbers/n",
        "Context": "caller-robot", "Exten": "s", "Priority": "1",
        "CallerID": caller_id,
        "ChannelId": robot_id, "OtherChannelId": ivr_id,
        "Timeout": str(int(request.deadline_s() * 1000)),
        "Async": "true",
        "Variable": ",".join(f"{k}={v}" for k, v in variables.items() if v),
    })


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
        return True
    except TimeoutError:
        return False


def place_call_sync(settings: Settings, request: CallRequest) -> CallRecord:
    return asyncio.run(place_call(settings, request))
