"""SIPp as the caller: an INVITE over the demo trunk, RFC 2833 DTMF from Debian's pcaps.

The scenario is generated from the DTMF script. Values a caller controls (number, display
name, call tag) never go into the XML: they are passed with ``-key`` and SIP-escaped, so
a test can send a hostile caller ID exactly as a real trunk would.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.errors import IvrError
from ivr.harness.dtmf_script import INTER_DIGIT_S, Pause, Press, Step

PCAP_DIR = Path("/usr/share/sip-tester")
PCAP_NAMES = {"*": "star", "#": "pound"}


def pcap_for(digit: str) -> Path:
    path = PCAP_DIR / f"dtmf_2833_{PCAP_NAMES.get(digit, digit)}.pcap"
    if not path.exists():
        raise IvrError(f"no RFC 2833 pcap for digit {digit!r} at {path}",
                       hint="apt-get install sip-tester (it ships /usr/share/sip-tester/dtmf_2833_*.pcap)",
                       error_id="no-dtmf-pcap")
    return path


LINK_HEADER = {1: 14, 113: 16}  # Ethernet, Linux cooked capture
EVENT_SPACING = 16000  # RTP timestamp units (8 kHz) between two key presses: 2 s


def renumbered_dtmf_pcap(source: Path, target: Path, press_index: int, seq_start: int) -> int:
    """Copy a DTMF pcap so the k-th key press of a call continues the RTP stream of the ones before.

    Debian's pcaps all share one SSRC, and their sequence numbers and timestamps do not
    increase from one digit to the next; Asterisk drops an RFC 2833 event whose timestamp
    goes backwards as a duplicate, so "2 then 0" would lose the 0. Returns the next sequence number.
    """
    data = bytearray(source.read_bytes())
    link = struct.unpack("<I", data[20:24])[0]
    offset, seq, first_ts = 24, seq_start, None
    while offset + 16 <= len(data):
        incl = struct.unpack("<I", data[offset + 8:offset + 12])[0]
        pkt = offset + 16
        ip = pkt + LINK_HEADER.get(link, 14)
        rtp = ip + (data[ip] & 0x0F) * 4 + 8
        ts = struct.unpack("!I", data[rtp + 4:rtp + 8])[0]
        first_ts = ts if first_ts is None else first_ts
        new_ts = (ts - first_ts + (press_index + 1) * EVENT_SPACING) & 0xFFFFFFFF
        struct.pack_into("!HI", data, rtp + 2, seq & 0xFFFF, new_ts)
        struct.pack_into("!H", data, rtp - 2, 0)  # UDP checksum: 0 = none (IPv4)
        seq += 1
        offset = pkt + incl
    target.write_bytes(bytes(data))
    return seq


def sip_display_name(name: str) -> str:
    """A quoted-string display name (RFC 3261): quotes and backslashes escaped, no line breaks."""
    clean = re.sub(r"[\x00-\x1f\x7f]", " ", name)
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="ivr test call">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [caller_display] <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:[caller]@[local_ip]:[local_port]
      Max-Forwards: 70
      X-IVR-Call-Tag: [call_tag]-[call_number]
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=ivr 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: [caller_display] <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:[caller]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"""

_TAIL = """  <recv request="BYE" timeout="{hold_ms}" ontimeout="caller_bye"/>
  <send next="done">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]>
  </send>
  <label id="caller_bye"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: [caller_display] <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:[caller]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" timeout="5000"/>
  <label id="done"/>
</scenario>
"""


def scenario_xml(steps: tuple[Step, ...], delay_s: float, hold_s: float, pcap_dir: Path | None = None) -> str:
    """A UAC scenario: call, wait ``delay_s``, follow the DTMF script, then wait up to ``hold_s``
    for Asterisk to hang up (the IVR's decision) before hanging up as the caller.

    With ``pcap_dir``, each key press gets its own renumbered pcap there (see
    :func:`renumbered_dtmf_pcap`); without, Debian's files are used as they are."""
    body = [f'  <pause milliseconds="{int(delay_s * 1000)}"/>']
    seq, presses = 1000, 0
    for i, step in enumerate(steps):
        if isinstance(step, Press):
            pcap = pcap_for(step.digit)
            if pcap_dir is not None:
                target = pcap_dir / f"press{presses:03d}_{pcap.name}"
                seq = renumbered_dtmf_pcap(pcap, target, presses, seq)
                pcap = target
            presses += 1
            body.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
            if i < len(steps) - 1:  # after the last key, listen for the IVR's BYE at once
                body.append(f'  <pause milliseconds="{int(INTER_DIGIT_S * 1000)}"/>')
        elif isinstance(step, Pause):
            body.append(f'  <pause milliseconds="{int(step.seconds * 1000)}"/>')
    return _HEAD + "\n".join(body) + "\n" + _TAIL.format(hold_ms=int(hold_s * 1000))


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A free local port, as the kernel hands one out (from its ephemeral range)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


#: SIPp's media ports (``-mp N`` binds audio N, N+1 and video N+2, N+3) come from here:
#: above Asterisk's RTP range (config/ivr.toml, 10000-20000) and below the kernel's
#: ephemeral range (32768 up), so no ``bind(0)`` anywhere can take one between our check
#: and SIPp's bind, and two phones of one run never get the same block.
MEDIA_RANGE = range(21000, 32000, 4)
_media_cursor = os.getpid() * 4 % len(MEDIA_RANGE)  # two test processes start apart


def media_port() -> int:
    """The first port of four consecutive free UDP ports, for SIPp's ``-mp``."""
    global _media_cursor
    for _ in range(len(MEDIA_RANGE)):
        base = MEDIA_RANGE[_media_cursor]
        _media_cursor = (_media_cursor + 1) % len(MEDIA_RANGE)
        if _all_free(base, 4):
            return base
    raise IvrError(f"no four free local UDP ports for SIPp media in {MEDIA_RANGE.start}-{MEDIA_RANGE.stop}",
                   error_id="no-free-port", hint="stop stray sipp processes (pkill sipp)")


def _all_free(base: int, count: int) -> bool:
    held: list[socket.socket] = []
    try:
        for port in range(base, base + count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(s)
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for s in held:
            s.close()


@dataclass(frozen=True)
class SippRun:
    exit_code: int
    stdout: str
    stderr: str
    errors_log: str
    #: Failed calls by SIPp's cause (``-trace_stat``'s cumulative ``Failed...`` counters that are not
    #: zero, e.g. ``{"TimeoutOnRecv": 3}``); empty when no call failed or the run kept no statistics.
    failures: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def only_early_bye(self) -> bool:
        """SIPp failed only because Asterisk hung up before the script ended (an IVR decision)."""
        lines = [ln for ln in self.errors_log.splitlines() if "Aborting call" in ln]
        return bool(lines) and all("unexpected BYE" in ln for ln in lines)


@dataclass(frozen=True)
class SippCall:
    """Everything SIPp needs for one scenario run (``calls`` > 1 and ``rate`` make a load run)."""

    target: str  # host:port of Asterisk's PJSIP
    dnis: str
    caller: str
    caller_name: str
    call_tag: str
    steps: tuple[Step, ...]
    delay_s: float
    hold_s: float
    calls: int = 1
    rate: float = 1.0
    max_concurrent: int = 1
    timeout_s: float = 120.0
    #: One caller number per call, in order (SIPp's ``-inf`` injection file), so one SIPp
    #: process places many distinct callers; empty: ``caller`` for every call.
    callers: tuple[str, ...] = ()
    #: Keep SIPp's statistics file (``-trace_stat``) and report failed calls by cause.
    trace_stat: bool = False


def failure_causes(stat_csv: str) -> dict[str, int]:
    """The cumulative ``Failed<Cause>(C)`` counters of the last row of SIPp's ``-trace_stat`` file
    (semicolon-separated, a header row first) that are not zero, keyed by cause."""
    rows = [line.split(";") for line in stat_csv.splitlines() if line.strip()]
    if len(rows) < 2:
        return {}
    causes: dict[str, int] = {}
    for name, value in zip(rows[0], rows[-1], strict=False):
        if name.startswith("Failed") and name.endswith("(C)") and name != "FailedCall(C)":
            count = int(value) if value.strip().isdigit() else 0
            if count:
                causes[name[len("Failed"):-len("(C)")]] = count
    return causes


async def run_sipp(call: SippCall) -> SippRun:
    if shutil.which("sipp") is None:
        raise IvrError("sipp is not installed", hint="apt-get install sip-tester", error_id="no-sipp")
    for number in (call.caller, *call.callers):
        if re.search(r"[\[\]\s;]", number):
            raise IvrError(f"caller number {number!r} cannot be sent by SIPp as a URI user", error_id="bad-caller")
    if "[" in call.call_tag:
        raise IvrError(f"call tag {call.call_tag!r} cannot be sent by SIPp", error_id="bad-caller")
    with tempfile.TemporaryDirectory(prefix="ivr-sipp-") as tmp:
        scen = Path(tmp) / "call.xml"
        scenario = scenario_xml(call.steps, call.delay_s, call.hold_s, pcap_dir=Path(tmp))
        injection: list[str] = []
        if call.callers:
            scenario = scenario.replace("[caller]", "[field0]")
            (Path(tmp) / "callers.csv").write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in call.callers))
            injection = ["-inf", str(Path(tmp) / "callers.csv")]
        scen.write_text(scenario, encoding="iso-8859-1", errors="replace")
        cmd = [
            "sipp", call.target, "-sf", str(scen), "-s", call.dnis,
            "-i", "127.0.0.1", "-p", str(free_port()),
            "-mi", "127.0.0.1", "-mp", str(media_port()),
            "-m", str(call.calls), "-r", str(call.rate), "-l", str(call.max_concurrent),
            "-key", "caller", call.caller,
            "-key", "caller_display", sip_display_name(call.caller_name or call.caller),
            "-key", "call_tag", call.call_tag,
            "-nostdin", "-trace_err", "-timeout", f"{int(call.timeout_s)}s", "-timeout_error", *injection,
            *(["-trace_stat", "-stf", str(Path(tmp) / "stat.csv"), "-fd", "1"] if call.trace_stat else []),
        ]
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=tmp, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(call.timeout_s + 15):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
        except asyncio.CancelledError:  # the caller gave up on these calls: SIPp must not outlive it
            proc.kill()
            await proc.wait()
            raise
        errors = "\n".join(p.read_text(errors="replace") for p in Path(tmp).glob("*_errors.log"))
        stat = Path(tmp) / "stat.csv"
        causes = failure_causes(stat.read_text(errors="replace")) if stat.exists() else {}
        return SippRun(proc.returncode if proc.returncode is not None else -9,
                       out.decode(errors="replace"), err.decode(errors="replace"), errors, causes)
