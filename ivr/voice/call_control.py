"""The agent API's transfers and consultations, done by Asterisk over AMI.

A blind transfer is AMI ``BlindTransfer`` on the agent's channel into ``[ivr-transfer]``:
the same path as a REFER from the phone, so the dialplan, the token and the journal are
the same. A consultation moves the caller into a room of their own (quiet, music while
alone: the caller hears hold music, nothing else) and the agent into a consultation room,
then originates the expert's leg into it; ``conference`` moves the agent and the expert
into the caller's room. The agent who hangs up then leaves the caller with the expert.
Where the channels are comes from :class:`~ivr.voice.agent_events.AgentEventRecorder`.
"""

from __future__ import annotations

import logging

from ivr.errors import CallControlError, IvrError
from ivr.journey.events import CONSULT_STARTED
from ivr.voice import channel_vars as cv
from ivr.voice.agent_events import AgentEventRecorder, LiveCall
from ivr.voice.ami import AmiClient, AmiUnavailable

log = logging.getLogger(__name__)

TRANSFER_CONTEXT = "ivr-transfer"
EXPERT_CONTEXT = "ivr-expert-dial"
ROOM_CONTEXT = "ivr-conference"


class AmiCallControl:
    def __init__(self, ami: AmiClient, calls: AgentEventRecorder) -> None:
        self.ami = ami
        self.calls = calls

    def _call(self, interaction: str) -> LiveCall:
        live = self.calls.live(interaction)
        if live is None or not live.channel:
            raise CallControlError("this call is not connected to an agent here (ended, or not yet answered)")
        return live

    def _agent_channel(self, live: LiveCall, agent: str) -> str:
        channel = live.agents.get(agent) or live.experts.get(agent)
        if not channel:
            on = ", ".join(sorted({*live.agents, *live.experts})) or "nobody"
            raise CallControlError(f"{agent} is not on this call (on it: {on})")
        return channel

    async def _act(self, action: dict[str, str]) -> None:
        try:
            await self.ami.action(action)
        except (AmiUnavailable, IvrError) as exc:
            raise CallControlError(f"Asterisk refused {action['Action']}: {exc}") from None

    async def transfer(self, interaction: str, agent: str, to: str, reason: str, kind: str = "queue") -> None:
        live = self._call(interaction)
        channel = self._agent_channel(live, agent)
        self.calls.remember_transfer(interaction, reason, "api", kind)
        await self._act({"Action": "BlindTransfer", "Channel": channel, "Context": TRANSFER_CONTEXT, "Exten": to})

    async def consult(self, interaction: str, agent: str, to: str) -> str:
        live = self._call(interaction)
        channel = self._agent_channel(live, agent)
        token = await self._token(live.channel)
        live.consults += 1
        n = live.consults
        # Journaled before the move: the rooms' join events must not come before the reason for them.
        self.calls.journal(interaction, CONSULT_STARTED, {"by": agent, "to": to, "room": "consultation"})
        await self._act({"Action": "Setvar", "Channel": live.channel, "Variable": cv.ROOM, "Value": live.room})
        await self._act({"Action": "Setvar", "Channel": channel, "Variable": cv.ROOM, "Value": live.consult_room})
        await self._act({"Action": "Redirect", "Channel": live.channel, "Context": ROOM_CONTEXT, "Exten": "customer",
                         "Priority": "1", "ExtraChannel": channel, "ExtraContext": ROOM_CONTEXT,
                         "ExtraExten": "consult", "ExtraPriority": "1"})
        await self._act({
            "Action": "Originate", "Channel": f"Local/{to}@{EXPERT_CONTEXT}", "Context": ROOM_CONTEXT,
            "Exten": "consult", "Priority": "1", "Async": "true", "Timeout": "60000",
            "ChannelId": f"{interaction}-e{n}a", "OtherChannelId": f"{interaction}-e{n}b",
            "CallerID": f"\"Consultation for {agent}\" <{agent}>",
            "Variable": f"{cv.ROOM}={live.consult_room},__{cv.CONTEXT_TOKEN}={token}"})
        return live.consult_room

    async def conference(self, interaction: str, agent: str) -> None:
        live = self._call(interaction)
        channel = self._agent_channel(live, agent)
        if not live.experts:
            raise CallControlError("no expert has joined the consultation yet")
        for leg in (channel, *live.experts.values()):
            await self._act({"Action": "Setvar", "Channel": leg, "Variable": cv.ROOM, "Value": live.room})
        expert_legs = list(live.experts.values())
        action = {"Action": "Redirect", "Channel": channel, "Context": ROOM_CONTEXT, "Exten": "join",
                  "Priority": "1"}
        if expert_legs:
            action |= {"ExtraChannel": expert_legs[0], "ExtraContext": ROOM_CONTEXT, "ExtraExten": "join",
                       "ExtraPriority": "1"}
        await self._act(action)

    async def _token(self, channel: str) -> str:
        try:
            reply = await self.ami.action({"Action": "Getvar", "Channel": channel, "Variable": cv.CONTEXT_TOKEN})
        except (AmiUnavailable, IvrError) as exc:
            raise CallControlError(f"cannot read the call's token: {exc}") from None
        return str(reply.get("Value", ""))
