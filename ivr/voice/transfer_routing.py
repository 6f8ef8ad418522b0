"""The routing rules for a call an agent transferred to a queue.

``[ivr-transfer]`` runs ``AGI(<controller>/transfer,<queue>)`` before queueing a
transferred caller. The agent chose the queue, and the agent who just let go must not be
rung again as "the agent of the last call", so of the rules' decision only the priority
is taken, and only upwards: a VIP sent to collections stays a VIP there, and a rule that
gives a queue more urgency (``when: route.queue == 'collections' ...``) applies to a
transferred call too. The decision goes into the journey (``route_decided`` marked
``transfer``, which the KPIs do not count as a second route). If anything fails, the
dialplan goes on with the priority the call already had.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Protocol

from ivr.crm.lookup import LookupResult
from ivr.journey.events import ROUTE_DECIDED, VOICE
from ivr.journey.ports import JourneySink, StampedEvent
from ivr.journey.tokens import ContextClaim
from ivr.voice import channel_vars as cv
from ivr.voice.fastagi import AgiChannel
from ivr.voice.ports import Router

log = logging.getLogger(__name__)
_QUEUE = re.compile(r"[a-z][a-z0-9_-]{0,39}")


class CallerLookup(Protocol):
    async def lookup(self, raw_caller_id: str | None) -> LookupResult: ...


class ClaimResolver(Protocol):
    async def resolve(self, token: str) -> ContextClaim: ...


class TransferRouting:
    def __init__(self, router: Router, lookup: CallerLookup, tokens: ClaimResolver, journey: JourneySink) -> None:
        self.router = router
        self.lookup = lookup
        self.tokens = tokens
        self.journey = journey

    async def __call__(self, channel: AgiChannel) -> None:
        queue = channel.request.arg(1)
        uid = channel.request.uniqueid
        if not _QUEUE.fullmatch(queue):
            log.warning("transfer of %s: %r is not a queue name; left as it is", uid, queue)
            return
        try:
            await self._route(channel, queue, uid)
        except Exception as exc:  # noqa: BLE001 - the transfer goes on with the priority it had
            log.warning("transfer of %s to %s: routing rules not applied (%s)", uid, queue, exc)

    async def _route(self, channel: AgiChannel, queue: str, uid: str) -> None:
        had = await channel.get_variable(cv.QUEUE_PRIORITY) or "0"
        priority = int(had) if had.isdigit() else 0
        token = await channel.get_variable(cv.CONTEXT_TOKEN) or ""
        claim = await self.tokens.resolve(token) if token else None
        key = claim.customer_key if claim is not None else f"call:{uid}"
        found = await self.lookup.lookup(channel.request.caller_number)
        decision = await self.router.decide(
            queue=queue, priority=priority, reason=f"transferred to {queue}", customer=found.customer_fields(),
            caller_number=found.number, dnis=await channel.get_variable(cv.DNIS), journey_key=key,
            crm_status=found.status)
        kept = max(priority, decision.priority) if decision.kind == "queue" else priority
        await channel.set_variable(cv.QUEUE_PRIORITY, kept)
        await self.journey.append(key, [StampedEvent(time.time(), VOICE, claim.interaction if claim else uid,
                                                     ROUTE_DECIDED, {
            "kind": "queue", "queue": queue, "priority": kept, "reason": decision.reason,
            "rules": list(decision.rules), "agent_first": "", "transfer": True})])
        log.info("transfer of %s to %s: priority %d (had %d): %s", uid, queue, kept, priority, decision.reason)
