"""A SIPp agent phone: registers as a demo agent, answers the call a queue sends it, and
reports the SIP headers the INVITE carried (the context token above all).

This is what an agent's real softphone does, so a test can prove that the agent leg of a
routed call carries the token, over real SIP.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ivr.errors import IvrError
from ivr.harness.sipp import free_port, media_port

#: SIPp's -trace_msg header before each message: "----... 2026-12-05 06:40:08.541567 ..."
_STAMP = re.compile(r"^-+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)")

_REGISTER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="ivr agent phone: register">
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[agent]@[remote_ip]>;tag=[pid]reg[call_number]
      To: <sip:[agent]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:[agent]@[local_ip]:[local_port]>
      Expires: [expires]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="401" auth="true"/>
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[agent]@[remote_ip]>;tag=[pid]reg[call_number]
      To: <sip:[agent]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:[agent]@[local_ip]:[local_port]>
      Expires: [expires]
      [authentication]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""

# The phone rings: 180, its To tagged with the dialog's own tag ({tag}).
_RINGING = """  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]{tag}[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[agent]@[local_ip]:[local_port]>
      Content-Length: 0
    ]]>
  </send>
"""

_ANSWER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="ivr agent phone: answer">
  <recv request="INVITE">
    <action>
      <ereg regexp=".*" search_in="hdr" header="X-IVR-Context-Token:" check_it="false" assign_to="token"/>
      <log message="TOKEN=[$token]"/>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="false" assign_to="caller"/>
      <log message="FROM=[$caller]"/>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="remote"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="local"/>
      <ereg regexp=".*" search_in="hdr" header="Call-ID:" check_it="true" assign_to="callid"/>
      <ereg regexp="sip:[^&gt;;]*" search_in="hdr" header="Contact:" check_it="true" assign_to="target"/>    </action>
  </recv>
{ringing}  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]agent[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[agent]@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=agent 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
  <recv request="ACK"/>
  <nop><action><log message="ANSWERED"/></action></nop>
{refer}
  <recv request="BYE" timeout="{talk_ms}" ontimeout="agent_bye"/>
  <send next="done">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <label id="agent_bye"/>
  <send retrans="500">
    <![CDATA[
      BYE [$target] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$local];tag=[pid]agent[call_number]
      To: [$remote]
      Call-ID: [$callid]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" timeout="5000"/>
  <label id="done"/>
  <nop><action><log message="ENDED"/></action></nop>
</scenario>
"""

# A phone that rings and is never picked up: 180, then the caller gives up (CANCEL, answered
# 200, and the INVITE closed with 487), as a customer who does not answer a callback.
_RING_ONLY = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="ivr phone: rings, never answered">
  <recv request="INVITE">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="false" assign_to="caller"/>
      <log message="FROM=[$caller]"/>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" check_it="true" assign_to="cseq"/>
    </action>
  </recv>
{ringing}  <nop><action><log message="RINGING"/></action></nop>
  <recv request="CANCEL" timeout="{ring_ms}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]ring[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]ring[call_number]
      [last_Call-ID:]
      CSeq: [$cseq] INVITE
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
  <nop><action><log message="GAVE UP"/></action></nop>
  <nop><action><log message="ENDED"/></action></nop>
</scenario>
"""

# A blind transfer from the phone, as an agent presses "transfer" on it: an in-dialog REFER
# to Asterisk. Asterisk answers 202, reports progress by NOTIFY (answered by -aa) and, the
# transfer done, hangs up on the agent; the scenario then ends at "done".
_REFER = """  <pause milliseconds="{refer_ms}"/>
  <send retrans="500">
    <![CDATA[
      REFER [$target] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$local];tag=[pid]agent[call_number]
      To: [$remote]
      Call-ID: [$callid]
      CSeq: 1 REFER
      Contact: <sip:[agent]@[local_ip]:[local_port]>
      Refer-To: <sip:{refer_to}@{pbx}>
      Referred-By: <sip:[agent]@{pbx}>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="202"><action><log message="REFER ACCEPTED"/></action></recv>"""


@dataclass
class AgentPhone:
    """``async with AgentPhone("agent1", password, "127.0.0.1:5060") as phone: ...``"""

    agent: str
    password: str
    target: str
    ring_timeout_s: float = 60
    talk_s: float = 3
    refer_to: str | None = None  # transfer blind to this (a queue, an agent, a number) after refer_after_s
    refer_after_s: float = 3
    calls: int = 1  # answer this many calls, one after the other (an agent who becomes free again)
    register: bool = True  # False: a customer's phone on a fixed port (the trunk's far end)
    port: int = 0  # 0: any free port
    answer: bool = True  # False: the phone rings until the caller gives up (a customer who does not answer)
    expires_s: int = 300  # the registration's lifetime; nothing renews it, so a long run needs more
    log_lines: list[str] = field(default_factory=list)
    _proc: asyncio.subprocess.Process | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    async def __aenter__(self) -> AgentPhone:
        if shutil.which("sipp") is None:
            raise IvrError("sipp is not installed", hint="apt-get install sip-tester")
        self._tmp = tempfile.TemporaryDirectory(prefix="ivr-agent-")
        tmp = Path(self._tmp.name)
        (tmp / "register.xml").write_text(_REGISTER)
        refer = _REFER.format(refer_ms=int(self.refer_after_s * 1000), refer_to=self.refer_to, pbx=self.target) \
            if self.refer_to else ""
        scenario = _ANSWER.format(talk_ms=int(self.talk_s * 1000), refer=refer,
                                  ringing=_RINGING.format(tag="agent")) if self.answer \
            else _RING_ONLY.format(ring_ms=int(self.ring_timeout_s * 1000), ringing=_RINGING.format(tag="ring"))
        (tmp / "answer.xml").write_text(scenario)
        self._log = tmp / "agent.log"
        port = str(self.port or free_port())
        # SIPp cannot register and then take a new incoming call in one scenario: register
        # from the port, then answer on the same port (the contact Asterisk just stored).
        self._port = port
        code = await self._register(expires=self.expires_s) if self.register else 0
        if code != 0:
            raise IvrError(f"agent phone {self.agent} could not register (sipp exit {code})",
                           hint="check [sip] agent_password and that Asterisk is up")
        self._proc = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(tmp / "answer.xml"), "-m", str(self.calls), "-i", "127.0.0.1", "-p", port,
            "-mi", "127.0.0.1", "-mp", str(media_port()), "-aa", "-nostdin",
            "-key", "agent", self.agent, "-trace_logs", "-log_file", str(self._log),
            "-trace_msg", "-message_file", str(tmp / "messages.log"),
            "-timeout", f"{int(self.ring_timeout_s + 60)}s",
            cwd=tmp, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        await asyncio.sleep(0.3)  # let the answering SIPp bind before a call can arrive
        return self

    async def _register(self, expires: int) -> int:
        assert self._tmp is not None
        tmp = Path(self._tmp.name)
        register = await asyncio.create_subprocess_exec(
            "sipp", self.target, "-sf", str(tmp / "register.xml"), "-m", "1", "-i", "127.0.0.1", "-p", self._port,
            "-nostdin", "-key", "agent", self.agent, "-key", "expires", str(expires),
            "-au", self.agent, "-ap", self.password, "-timeout", "10s", "-timeout_error", cwd=tmp,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        return await register.wait()

    def _read(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    async def _wait_for(self, marker: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while marker not in self._read():
            if self._proc is not None and self._proc.returncode is not None:
                raise IvrError(f"agent phone {self.agent} exited ({self._proc.returncode}) before {marker}")
            if loop.time() > deadline:
                raise IvrError(f"agent phone {self.agent}: no {marker} within {timeout:.0f} s")
            await asyncio.sleep(0.1)

    async def answered(self, timeout: float = 60) -> str:
        """Wait until the phone answered a call; return the context token its INVITE carried."""
        await self._wait_for("ANSWERED", timeout)
        match = re.search(r"TOKEN=(.*)", self._read())
        return (match.group(1).strip() if match else "").removeprefix("X-IVR-Context-Token:").strip()

    async def callers(self, count: int, timeout: float = 60) -> list[tuple[str, str]]:
        """Wait until ``count`` calls were answered; each call's (From header, token), in order."""
        await self._until_logged("ANSWERED", count, timeout, f"{count} calls", f"fewer than {count} calls answered")
        text = self._read()
        froms = [m.strip().removeprefix("From:").strip() for m in re.findall(r"FROM=(.*)", text)]
        tokens = [m.strip().removeprefix("X-IVR-Context-Token:").strip() for m in re.findall(r"TOKEN=(.*)", text)]
        return list(zip(froms, tokens, strict=False))[:count]

    async def _until_logged(self, marker: str, count: int, timeout: float, done: str, late: str) -> None:
        """Wait until the scenario logged ``marker`` ``count`` times; the phone exiting first or
        the time running out is an error that says which (``done``, ``late``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._read().count(marker) < count:
            if self._proc is not None and self._proc.returncode is not None:
                raise IvrError(f"phone {self.agent} exited ({self._proc.returncode}) after fewer than {done}")
            if loop.time() > deadline:
                raise IvrError(f"phone {self.agent}: {late} within {timeout:.0f} s")
            await asyncio.sleep(0.2)

    async def rung(self, count: int, timeout: float = 60) -> list[str]:
        """Wait until a phone that never answers was rung ``count`` times and each caller gave
        up; each call's From header, in order."""
        await self._until_logged("GAVE UP", count, timeout, f"{count} rings", f"rung fewer than {count} times")
        return [m.strip().removeprefix("From:").strip() for m in re.findall(r"FROM=(.*)", self._read())][:count]

    def invite_times(self) -> list[float]:
        """When each INVITE reached the phone (wall clock, from SIPp's message trace), in order."""
        if self._tmp is None:
            return []
        path = Path(self._tmp.name) / "messages.log"
        if not path.exists():
            return []
        times: list[float] = []
        stamp: str | None = None
        for line in path.read_text(errors="replace").splitlines():
            found = _STAMP.match(line)
            if found:
                stamp = found.group(1)
            elif line.startswith("INVITE sip:") and stamp is not None:
                whole = time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S"))
                times.append(whole + float("0" + stamp[19:]))
                stamp = None
        return times

    async def finished(self, timeout: float = 30) -> str:
        """Wait until the phone's call is over (hung up by either side); its log."""
        if self._proc is not None:
            async with asyncio.timeout(timeout):
                await self._proc.wait()
        return self._read()

    def in_call(self) -> bool:
        """Whether a call reached the phone and has not ended yet (each INVITE logs FROM=,
        each end of the scenario ENDED)."""
        text = self._read()
        return text.count("FROM=") > text.count("ENDED")

    async def __aexit__(self, *_exc: object) -> None:
        if self._proc is not None and self._proc.returncode is None and not self.in_call():
            self._proc.kill()  # waiting for calls that never come: nothing to finish
            await self._proc.wait()
        if self._proc is not None and self._proc.returncode is None:
            try:
                async with asyncio.timeout(self.talk_s + 10):
                    await self._proc.wait()
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._tmp is not None and os.environ.get("IVR_KEEP_SIPP"):
            shutil.copytree(self._tmp.name, f"{os.environ['IVR_KEEP_SIPP']}/{self.agent}", dirs_exist_ok=True)
        if self._tmp is not None and self.register:
            await self._register(expires=0)  # unregister: later calls must not ring a phone that is gone
            self._tmp.cleanup()
