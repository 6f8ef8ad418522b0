"""Fixtures every layer's unit tests share: a clock the test moves, an in-memory journey, tokens."""

from __future__ import annotations

import pytest

from ivr.journey.memory import MemoryJourney
from ivr.journey.tokens import TokenService
from tests.clock import FakeClock

SECRET = b"t" * 32
TTL_S = 600


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def journey(clock: FakeClock) -> MemoryJourney:
    return MemoryJourney(clock=clock)


@pytest.fixture
def tokens(journey: MemoryJourney, clock: FakeClock) -> TokenService:
    return TokenService(SECRET, journey, ttl_s=TTL_S, clock=clock)


