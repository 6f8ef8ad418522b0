"""Fixtures of the wire tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def fuzz_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for a whole fuzz module: the composition is built once and every example runs on it."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()
