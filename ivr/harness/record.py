"""What one test call did, read back from AMI events: the stable ``ivr call --json`` shape.

The shape is documented in docs/call-record.md; change it only with its ``version``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

RECORD_VERSION = 1
# Variables worth showing: ours, and the dialplan applications' own outcome variables.
INTERESTING_PREFIXES = ("IVR_",)
INTERESTING_NAMES = frozenset({"AGISTATUS", "QUEUESTATUS", "QUEUE_PRIO", "DIALSTATUS"})


@dataclass
class QueueVisit:
    name: str
    position: int
    priority: int | None = None


@dataclass
class CallRecord:
    transport: str
    caller: str
    dnis: str
    keys: str
    call_tag: str
    answered: bool = False
    channel: str = ""
    uniqueid: str = ""
    linkedid: str = ""
    digits: str = ""
    queue: QueueVisit | None = None
    agents_called: list[str] = field(default_factory=list)
    agent_events: list[dict[str, str]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    hangup_cause: int | None = None
    hangup_text: str = ""
    asterisk: str = ""  # host:port of the AMI of the Asterisk that took the call
    duration_s: float = 0.0
    transport_result: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            "version": RECORD_VERSION,
            "transport": data["transport"],
            "from": data["caller"],
            "to": data["dnis"],
            "keys": data["keys"],
            "call_tag": data["call_tag"],
            "answered": data["answered"],
            "channel": data["channel"],
            "uniqueid": data["uniqueid"],
            "linkedid": data["linkedid"],
            "digits": data["digits"],
            "queue": data["queue"],
            "agents_called": data["agents_called"],
            "agent_events": data["agent_events"],
            "variables": data["variables"],
            "hangup": {"cause": data["hangup_cause"], "text": data["hangup_text"]},
            "duration_s": round(data["duration_s"], 3),
            "transport_result": data["transport_result"],
            "errors": data["errors"],
        }

    def to_text(self) -> str:
        lines = [
            f"call {self.caller} -> {self.dnis} over {self.transport} (tag {self.call_tag})",
            f"  answered:  {'yes' if self.answered else 'no'}  channel {self.channel or '-'}",
            f"  keys sent: {self.keys or '-'}   digits received by the IVR: {self.digits or '-'}",
        ]
        if self.queue:
            prio = f", priority {self.queue.priority}" if self.queue.priority is not None else ""
            lines.append(f"  queue:     {self.queue.name} (position {self.queue.position}{prio})")
        else:
            lines.append("  queue:     -")
        if self.agents_called:
            lines.append(f"  agents:    {', '.join(self.agents_called)}")
        for name, value in sorted(self.variables.items()):
            lines.append(f"  var {name} = {value}")
        lines.append(f"  hangup:    cause {self.hangup_cause} ({self.hangup_text})  after {self.duration_s:.1f} s")
        for err in self.errors:
            lines.append(f"  error:     {err}")
        return "\n".join(lines)


def chan_variable(event: Mapping[str, str], name: str) -> str:
    """A variable that manager.conf `channelvars` adds to every event (caller side first)."""
    for header in ("ChanVariable", "DestChanVariable"):
        for line in event.get(header, "").splitlines():
            key, _, value = line.partition("=")
            if key == name and value:
                return value
    return ""


def _strip_inherit(name: str) -> str:
    return name.lstrip("_")


def find_linkedid_by_tag(events: Iterable[Mapping[str, str]], tag: str) -> tuple[str, str] | None:
    """(uniqueid, linkedid) of the channel on which the dialplan stored our call tag."""
    for ev in events:
        if (ev.get("Event") == "VarSet" and _strip_inherit(ev.get("Variable", "")) == "IVR_CALL_TAG"
                and ev.get("Value") == tag):
            return ev.get("Uniqueid", ""), ev.get("Linkedid", "")
    return None


def fill_from_events(record: CallRecord, events: Iterable[Mapping[str, str]], ivr_uniqueid: str) -> None:
    """Fill ``record`` from the events of the call whose IVR-side channel is ``ivr_uniqueid``."""
    events = list(events)
    linkedid = next((e.get("Linkedid", "") for e in events if e.get("Uniqueid") == ivr_uniqueid), "")
    record.uniqueid, record.linkedid = ivr_uniqueid, linkedid
    for ev in events:
        name = ev.get("Event", "")
        mine = ev.get("Uniqueid") == ivr_uniqueid
        if mine and not record.channel and ev.get("Channel"):
            record.channel = ev["Channel"]
        if mine and name == "Newstate" and ev.get("ChannelStateDesc") == "Up":
            record.answered = True
        elif mine and name == "DTMFEnd" and ev.get("Direction") == "Received":
            record.digits += ev.get("Digit", "")
        elif mine and name == "VarSet":
            var = _strip_inherit(ev.get("Variable", ""))
            if var.startswith(INTERESTING_PREFIXES) or var in INTERESTING_NAMES:
                record.variables[var] = ev.get("Value", "")
        elif mine and name == "QueueCallerJoin":
            record.queue = QueueVisit(ev.get("Queue", ""), int(ev.get("Position", "0") or 0))
        elif name in ("AgentCalled", "AgentConnect") and linkedid and ev.get("Linkedid") == linkedid:
            if name == "AgentCalled":
                record.agents_called.append(ev.get("Interface") or ev.get("DestChannel", ""))
            record.agent_events.append({"event": name, "interface": ev.get("Interface", ""),
                                        "token": chan_variable(ev, "IVR_CONTEXT_TOKEN")})
        elif mine and name == "Hangup":
            record.hangup_cause = int(ev.get("Cause", "0") or 0)
            record.hangup_text = ev.get("Cause-txt", "")
    if record.queue is not None and record.variables.get("QUEUE_PRIO", "").lstrip("-").isdigit():
        record.queue.priority = int(record.variables["QUEUE_PRIO"])
