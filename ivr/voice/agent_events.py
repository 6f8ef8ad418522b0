"""What happens after the controller handed a call to the dialplan, read from AMI.

The journey must show which agent answered (the next call's routing tries that agent
first), whether the caller gave up waiting (abandoned calls never count as contained),
and every hop after that: an agent's transfer (a REFER from the phone and the agent API's
transfer are the same ``BlindTransfer`` to Asterisk, so one event), an expert pulled in,
who joined and left the conference, and when each agent's part ended (``AgentComplete``:
its talk time is the handle time the KPIs average). The controller remembers, for each
call it routed, the journey key; AMI events about those calls become journey events.

It also keeps where each routed call is now (the caller's channel, each agent's channel,
the conference rooms), because that is what the agent API needs to transfer or conference
a call: :class:`LiveCall`. An expert's legs and the rooms are named after the caller's
uniqueid (:func:`owner_of`), so their events find the call without a lookup table.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from ivr.journey.events import (
    AGENT_COMPLETED,
    AGENT_CONNECTED,
    CALL_LOST,
    CALL_TRANSFERRED,
    PARTICIPANT_JOINED,
    PARTICIPANT_LEFT,
    QUEUE_ABANDONED,
)
from ivr.journey.ports import JourneySink, StampedEvent
from ivr.voice import channel_vars as cv

log = logging.getLogger(__name__)
MAX_TRACKED_CALLS = 10_000
ROOM_PREFIX = "ivr-"
CONSULT_SUFFIX = "-consult"
EXPERT_MARK = "-e"  # an expert's Local legs: <caller uniqueid>-e<n>a (in the room) and -e<n>b (ringing the expert)
_EXPERT_LEG = re.compile(r"(.+)-e([0-9]+)([ab])")


@dataclass(frozen=True)
class RoutedCall:
    journey_key: str
    channel: str  # voice
    queue: str


@dataclass
class LiveCall:
    """Where a routed call is now, as AMI reported it: what a transfer or a conference acts on."""

    uniqueid: str
    channel: str = ""  # the caller's channel name
    agents: dict[str, str] = field(default_factory=dict)  # agent -> their channel name
    experts: dict[str, str] = field(default_factory=dict)  # expert agent -> the room leg (Local ...;1) channel
    expert_legs: dict[str, str] = field(default_factory=dict)  # the room leg's uniqueid -> the expert agent
    consults: int = 0
    # an expert's room leg seen in a room before the answer that names the expert: (room, channel, joined)
    unnamed_joins: dict[str, list[tuple[str, str, bool]]] = field(default_factory=dict)
    pending_reason: tuple[str, str, str] | None = None  # (reason, via, kind) of a transfer the API asked for

    @property
    def room(self) -> str:
        return f"{ROOM_PREFIX}{self.uniqueid}"

    @property
    def consult_room(self) -> str:
        return f"{ROOM_PREFIX}{self.uniqueid}{CONSULT_SUFFIX}"


def owner_of(uniqueid_or_room: str) -> str:
    """The caller's uniqueid behind an expert leg (``<uid>-e1a``) or a room (``ivr-<uid>[-consult]``)."""
    name = uniqueid_or_room
    if name.startswith(ROOM_PREFIX):
        name = name[len(ROOM_PREFIX):].removesuffix(CONSULT_SUFFIX)
    match = _EXPERT_LEG.fullmatch(name)
    return match.group(1) if match else name


def agent_name(interface: str) -> str:
    """``PJSIP/agent2`` or ``PJSIP/agent2-0000001a`` -> ``agent2``."""
    name = interface.split("/", 1)[-1]
    return name.rsplit("-", 1)[0] if "-" in name and name.rsplit("-", 1)[1].isalnum() and len(
        name.rsplit("-", 1)[1]) == 8 else name


#: The AMI events :meth:`AgentEventRecorder.on_event` reads (the controller's AMI session asks for no others).
EVENTS = ("AgentConnect", "AgentComplete", "DialEnd", "QueueCallerAbandon", "Hangup", "BlindTransfer",
          "ConfbridgeJoin", "ConfbridgeLeave")


class AgentEventRecorder:
    def __init__(self, journey: JourneySink) -> None:
        self.journey = journey
        self._calls: OrderedDict[str, RoutedCall] = OrderedDict()
        self._live: dict[str, LiveCall] = {}
        self._pending: set[asyncio.Task[None]] = set()

    def track(self, uniqueid: str, call: RoutedCall) -> None:
        self._calls[uniqueid] = call
        while len(self._calls) > MAX_TRACKED_CALLS:
            old, _ = self._calls.popitem(last=False)
            self._live.pop(old, None)

    def live(self, uniqueid: str) -> LiveCall | None:
        """Where the routed call ``uniqueid`` is now; None once it ended (or was never routed here)."""
        return self._live.get(uniqueid) if uniqueid in self._calls else None

    def on_event(self, event: Mapping[str, str]) -> None:
        name = event.get("Event", "")
        if name == "BlindTransfer":
            self._on_blind_transfer(event)
            return
        if name in ("ConfbridgeJoin", "ConfbridgeLeave"):
            self._on_conference(event, joined=name == "ConfbridgeJoin")
            return
        uid = event.get("Uniqueid", "")
        call = self._calls.get(uid)
        if call is None:
            if name == "AgentConnect" or (name == "DialEnd" and event.get("DialStatus") == "ANSWER"):
                self._on_expert_answer(event)  # an expert's phone: by the experts' queue, or dialled directly
            return
        live = self._live.setdefault(uid, LiveCall(uid))
        live.channel = event.get("Channel", live.channel)
        if name == "AgentConnect":
            agent = agent_name(event.get("Interface") or event.get("DestChannel", ""))
            live.agents[agent] = event.get("DestChannel", "")
            data = {"agent": agent, "queue": event.get("Queue", call.queue), "hold_s": _int(event.get("HoldTime"))}
            self._append(call, uid, AGENT_CONNECTED, data)
        elif name == "DialEnd" and event.get("DialStatus") == "ANSWER" and event.get("DestChannel") \
                and _leg(event) in ("direct", "number"):  # a queue's own DialEnd: its AgentConnect counts
            agent = agent_name(event["DestChannel"])
            live.agents[agent] = event["DestChannel"]
            self._append(call, uid, AGENT_CONNECTED, {"agent": agent, "queue": ""})
        elif name == "AgentComplete":
            agent = agent_name(event.get("Interface") or event.get("DestChannel", ""))
            self._append(call, uid, AGENT_COMPLETED, {
                "agent": agent, "queue": event.get("Queue", call.queue), "hold_s": _int(event.get("HoldTime")),
                "talk_s": _int(event.get("TalkTime")), "reason": event.get("Reason", "")})
        elif name == "QueueCallerAbandon":
            self._append(call, uid, QUEUE_ABANDONED, {"queue": event.get("Queue", call.queue),
                                                      "hold_s": _int(event.get("HoldTime"))})
        elif name == "Hangup":
            self._calls.pop(uid, None)
            self._live.pop(uid, None)

    def reconcile(self, live_ids: set[str], system_name: str, reason: str) -> list[str]:
        """Routed calls of the Asterisk named ``system_name`` that it no longer has: journaled as
        lost (``reason``) and forgotten. After Asterisk restarts, no Hangup ever comes for them."""
        gone = [uid for uid in self._calls
                if uid not in live_ids and uid.rpartition("-")[0] == system_name]
        for uid in gone:
            call = self._calls.pop(uid)
            self._live.pop(uid, None)
            self._append(call, uid, CALL_LOST, {"queue": call.queue, "reason": reason})
        return gone

    def _on_blind_transfer(self, event: Mapping[str, str]) -> None:
        uid = event.get("TransfereeUniqueid", "")
        call = self._calls.get(uid)
        if call is None or event.get("Result", "Success") != "Success":
            return
        live = self._live.setdefault(uid, LiveCall(uid))
        by = agent_name(event.get("TransfererChannel", ""))
        live.agents.pop(by, None)
        to = event.get("Extension", "")
        # A REFER names a queue or an agent's phone alike (the dialplan tells them apart): "name".
        reason, via, kind = live.pending_reason or ("", "phone", "number" if to[:1] in "+0123456789" else "name")
        live.pending_reason = None
        self._append(call, uid, CALL_TRANSFERRED, {"by": by, "to": to, "to_kind": kind, "mode": "blind",
                                                   "reason": reason, "via": via})

    def _on_expert_answer(self, event: Mapping[str, str]) -> None:
        """The expert's phone answered the far leg (``<uid>-e<n>b``) of a consultation."""
        match = _EXPERT_LEG.fullmatch(event.get("Uniqueid", ""))
        if match is None or match.group(1) not in self._calls:
            return
        live = self._live.setdefault(match.group(1), LiveCall(match.group(1)))
        expert = agent_name(event.get("Interface") or event.get("DestChannel", ""))
        leg = f"{match.group(1)}-e{match.group(2)}a"
        live.expert_legs[leg] = expert
        for room, channel, joined in live.unnamed_joins.pop(leg, []):  # the room heard of the leg first
            self._member(live, room, leg, channel, joined=joined)

    def _on_conference(self, event: Mapping[str, str], *, joined: bool) -> None:
        room = event.get("Conference", "")
        owner = owner_of(room)
        call = self._calls.get(owner)
        if call is None or not room.startswith(ROOM_PREFIX):
            return
        live = self._live.setdefault(owner, LiveCall(owner))
        uid, channel = event.get("Uniqueid", ""), event.get("Channel", "")
        if _EXPERT_LEG.fullmatch(uid) and uid not in live.expert_legs:
            # The expert's leg joins the room the instant their phone answers; the queue's
            # AgentConnect naming the expert may come just after: name them then.
            live.unnamed_joins.setdefault(uid, []).append((room, channel, joined))
            return
        self._member(live, room, uid, channel, joined=joined)

    def _member(self, live: LiveCall, room: str, uid: str, channel: str, *, joined: bool) -> None:
        owner = live.uniqueid
        call = self._calls.get(owner)
        if call is None:
            return
        if uid == owner:
            who, role = "caller", "caller"
        elif uid in live.expert_legs:
            who, role = live.expert_legs[uid], "expert"
            if joined:
                live.experts[who] = channel
        else:
            who, role = agent_name(channel), "agent"
            if joined:
                live.agents[who] = channel
        if not joined:
            (live.experts if role == "expert" else live.agents).pop(who, None)
        kind = PARTICIPANT_JOINED if joined else PARTICIPANT_LEFT
        data: dict[str, object] = {"who": who, "role": role,
                                   "room": "consultation" if room.endswith(CONSULT_SUFFIX) else "conference"}
        self._append(call, owner, kind, data)

    def remember_transfer(self, uniqueid: str, reason: str, via: str, kind: str) -> None:
        """The reason the agent API gave, for the ``BlindTransfer`` Asterisk reports next."""
        live = self._live.get(uniqueid)
        if live is not None:
            live.pending_reason = (reason, via, kind)

    def journal(self, uniqueid: str, kind: str, data: dict[str, object]) -> None:
        """An event about a routed call that no AMI event reports (a consultation asked for)."""
        call = self._calls.get(uniqueid)
        if call is not None:
            self._append(call, uniqueid, kind, data)

    def _append(self, call: RoutedCall, uid: str, kind: str, data: dict[str, object]) -> None:
        event = StampedEvent(time.time(), call.channel, uid, kind, data)
        task = asyncio.get_running_loop().create_task(self.journey.append(call.journey_key, [event]))
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not store an agent event: %s", task.exception())

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def _leg(event: Mapping[str, str]) -> str:
    """How the answering leg was dialled (``IVR_LEG`` from the dialplan's pre-dial handler)."""
    for line in event.get("DestChanVariable", "").splitlines():
        key, _, value = line.partition("=")
        if key == cv.LEG:
            return value
    return ""


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
