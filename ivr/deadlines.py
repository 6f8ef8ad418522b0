"""Time limits for many concurrent requests on one timer: ``async with within(seconds):``.

Every USSD request runs under a deadline, and its CRM calls under their own budgets.
``asyncio.timeout`` arms an event-loop timer for each and cancels it on the way out; on
uvloop each of those timers is a libuv handle created and closed again, and together they
cost a USSD request about 25 µs of its 500 on the event-loop thread (``bench/RESULTS.md``).
Here a limit is an entry in a queue (one queue per duration: entries join in the order
they expire), and one timer, armed only while limits are live, wakes every
:data:`RESOLUTION_S` and cancels the tasks whose time is up.

The behaviour is ``asyncio.timeout``'s: the body is cancelled, and the block raises
``TimeoutError``; a cancellation from elsewhere (the aggregator hung up) passes through as
``CancelledError``; limits nest. The one difference: a limit fires up to
:data:`RESOLUTION_S` late, which budgets of a few hundred milliseconds and more can afford.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType
from weakref import WeakKeyDictionary

RESOLUTION_S = 0.02


class Limit:
    """One ``async with within(seconds)`` block (the object :func:`within` returns)."""

    __slots__ = ("_seconds", "_task", "_cancelling", "expires", "fired", "done")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self.expires = 0.0
        self.fired = False  # the sweeper cancelled the task for this limit
        self.done = False  # the block was left: the sweeper skips it

    async def __aenter__(self) -> Limit:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("within() must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        _sweeper(asyncio.get_running_loop()).add(self)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.done = True
        if self.fired and self._task is not None and self._task.uncancel() <= self._cancelling \
                and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc  # our cancellation, and nobody else's is pending

    def fire(self) -> None:
        self.fired = True
        if self._task is not None:
            self._task.cancel()


def within(seconds: float) -> Limit:
    """A limit of ``seconds`` on the block, as ``asyncio.timeout(seconds)``, on the shared timer."""
    return Limit(seconds)


class _Sweeper:
    """The limits of one event loop, and the one timer that expires them."""

    __slots__ = ("_loop", "_queues", "_armed")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[float, deque[Limit]] = {}  # by duration: each in expiry order
        self._armed = False

    def add(self, limit: Limit) -> None:
        limit.expires = self._loop.time() + limit._seconds
        queue = self._queues.get(limit._seconds)
        if queue is None:
            queue = self._queues[limit._seconds] = deque()
        queue.append(limit)
        if not self._armed:
            self._armed = True
            self._loop.call_later(RESOLUTION_S, self._sweep)

    def _sweep(self) -> None:
        now = self._loop.time()
        for seconds, queue in list(self._queues.items()):
            while queue and (queue[0].done or queue[0].expires <= now):
                limit = queue.popleft()
                if not limit.done:
                    limit.fire()
            if not queue:
                del self._queues[seconds]
        self._armed = bool(self._queues)
        if self._armed:
            self._loop.call_later(RESOLUTION_S, self._sweep)


_SWEEPERS: WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweeper] = WeakKeyDictionary()


def _sweeper(loop: asyncio.AbstractEventLoop) -> _Sweeper:
    sweeper = _SWEEPERS.get(loop)
    if sweeper is None:
        sweeper = _SWEEPERS[loop] = _Sweeper(loop)
    return sweeper
