"""The routing rules on an agent's transfer: the queue is the agent's, the priority never drops."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ivr.crm.lookup import LookupResult
from ivr.journey.memory import MemoryJourney
from ivr.journey.tokens import ContextClaim
from ivr.routing.rules import RouteDecision
from ivr.voice.transfer_routing import TransferRouting

UID = "1700000000.3"


class Channel:
    def __init__(self, queue: str, variables: dict[str, str]) -> None:
        self.request = SimpleNamespace(arg=lambda n: queue if n == 1 else "", uniqueid=UID, caller_number="+79991")
        self.variables = dict(variables)

    async def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)

    async def set_variable(self, name: str, value: object) -> None:
        self.variables[name] = str(value)


class Router:
    def __init__(self, decision: RouteDecision | Exception) -> None:
        self.decision = decision
        self.asked: dict[str, object] = {}

    async def decide(self, **kw: object) -> RouteDecision:
        self.asked = kw
        if isinstance(self.decision, Exception):
            raise self.decision
        return self.decision


class Lookup:
    async def lookup(self, raw: str | None) -> LookupResult:
        return LookupResult("found", None, "+79991", 1.0)


class Tokens:
    async def resolve(self, token: str) -> ContextClaim:
        return ContextClaim("C-9", UID, "support", 10, "VIP", "voice", 0.0)


def routing(decision: RouteDecision | Exception, journey: MemoryJourney) -> tuple[TransferRouting, Router]:
    router = Router(decision)
    return TransferRouting(router, Lookup(), Tokens(), journey), router


@pytest.mark.parametrize(("had", "rules_say", "kept"), [("10", 0, "10"), ("5", 20, "20"), ("", 3, "3")])
async def test_the_priority_is_the_higher_of_the_calls_and_the_rules(had, rules_say, kept) -> None:
    journey = MemoryJourney()
    handler, router = routing(RouteDecision("queue", "vip", rules_say, "rules", agent_first="agent3"), journey)
    channel = Channel("collections", {"IVR_QUEUE_PRIORITY": had, "IVR_CONTEXT_TOKEN": "t"})

    await handler(channel)

    assert channel.variables["IVR_QUEUE_PRIORITY"] == kept
    assert "IVR_QUEUE" not in channel.variables and "IVR_AGENT" not in channel.variables  # the agent's choice stands
    assert router.asked["queue"] == "collections" and router.asked["journey_key"] == "C-9"
    [event] = await journey.recent("C-9")
    assert (event.type, event.data["transfer"], event.data["queue"]) == ("route_decided", True, "collections")


async def test_rules_that_would_hang_up_cannot_refuse_an_agents_transfer() -> None:
    handler, _ = routing(RouteDecision("hangup", "collections", 0, "after hours"), MemoryJourney())
    channel = Channel("collections", {"IVR_QUEUE_PRIORITY": "5"})

    await handler(channel)

    assert channel.variables["IVR_QUEUE_PRIORITY"] == "5"


async def test_a_failure_leaves_the_call_as_it_was() -> None:
    handler, _ = routing(RuntimeError("rules broken"), MemoryJourney())
    channel = Channel("collections", {"IVR_QUEUE_PRIORITY": "5"})

    await handler(channel)

    assert channel.variables == {"IVR_QUEUE_PRIORITY": "5"}


async def test_something_that_is_no_queue_name_is_left_alone() -> None:
    handler, router = routing(RouteDecision("queue", "x", 1, "r"), MemoryJourney())

    await handler(Channel("../etc", {}))

    assert router.asked == {}
