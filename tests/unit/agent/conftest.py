"""The agent-facing HTTP side over an in-memory journey: a clock tests move, a token
service, and an aiohttp test client on 127.0.0.1 with a port the system picks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.agent.http import mount_agent_api
from ivr.journey.memory import MemoryJourney
from ivr.journey.ports import StampedEvent
from ivr.journey.tokens import ContextClaim, TokenService
from tests.clock import T0, FakeClock  # noqa: F401 - the tests of this folder import it from here

API_KEY = "agent-key-for-tests"
SECRET = b"t" * 32
TTL_S = 600
CUSTOMER = "C-125570"
CALL = "call-1"


def ev(at: float, type_: str, interaction: str = CALL, channel: str = "voice", **data: object) -> StampedEvent:
    return StampedEvent(at, channel, interaction, type_, dict(data))


def claim(**changes: object) -> ContextClaim:
    fields: dict[str, object] = {"customer_key": CUSTOMER, "interaction": CALL, "queue": "collections",
                                 "priority": 5, "route_reason": "collections: overdue 45 days", "channel": "voice",
                                 "journey_since": T0 - 7 * 86400}
    fields.update(changes)
    return ContextClaim(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def client(tokens: TokenService, journey: MemoryJourney) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    mount_agent_api(app, tokens, journey, API_KEY)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as test_client:
        yield test_client
