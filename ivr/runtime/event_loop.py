"""The asyncio event loop ``ivr serve`` runs on: uvloop unless configured otherwise.

Every USSD request, SMS and call step crosses the loop's sockets, timers and callbacks
several times. uvloop (libuv, in C) does that work for a fraction of the standard loop's
CPU: on the USSD bench it took about 40 µs off each request's 500 on the event-loop thread
(``bench/RESULTS.md``). Every library the controller uses (aiohttp, panoramisk, asyncpg)
runs on it unchanged, and so does our ARI client. ``[runtime] event_loop = "asyncio"`` is the way back to
the standard loop, for a platform without uvloop or to rule it out when chasing a bug.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ivr.errors import ConfigError

T = TypeVar("T")

EVENT_LOOPS = ("uvloop", "asyncio")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What builds the ``name`` event loop; :class:`ConfigError` for an unknown or missing one."""
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise ConfigError("[runtime] event_loop is uvloop, but uvloop is not installed",
                              hint='pip install uvloop, or set [runtime] event_loop = "asyncio"') from None
        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    raise ConfigError(f"[runtime] event_loop = {name!r} is not an event loop",
                      hint=f"one of: {', '.join(EVENT_LOOPS)}")


def run(main: Coroutine[Any, Any, T], event_loop: str) -> T:
    """``asyncio.run(main)`` on the ``event_loop`` loop."""
    try:
        factory = loop_factory(event_loop)
    except ConfigError:
        main.close()  # never to run: no "never awaited" warning on top of the error
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
