"""Refused credentials: slowed to one timing class, and a client that keeps guessing is locked out.

Every credential check of ours is constant-time, but what happens after it is not: a
forged token fails on its signature in microseconds, a well-signed unknown one after a
store read, an expired one before it. Timed over many tries, that difference tells a
guesser which tokens were once real. So every refusal is answered no sooner than
:data:`REFUSAL_FLOOR_S` after the request arrived, whatever its reason: one timing class.
And a client (by address) with more than ``failures`` refusals in ``window_s`` seconds gets
429 for everything until its oldest refusal leaves the window, right guesses included, so
a burst learns nothing and costs the store nothing.

Behind a reverse proxy every desk arrives from the proxy's address, so one guesser would
lock every desk out. With ``trusted_proxies`` (``[http] trusted_proxies``), a request from
one of those addresses is counted against the client its ``X-Forwarded-For`` names: the
nearest address in that header that is not itself a trusted proxy. The header of any other
peer is ignored (a client could write anything there).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable

from ivr.errors import IvrError
from ivr.ratelimit import SlidingWindowLimiter

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: A refusal is never answered sooner than this after its request arrived.
REFUSAL_FLOOR_S = 0.05
#: Refusals per client address in any window before it is locked out.
DEFAULT_FAILURES = 20
DEFAULT_WINDOW_S = 60.0
#: Client addresses tracked at once; the least recently refused are forgotten first.
MAX_CLIENTS = 50_000


def trusted_networks(setting: str) -> tuple[Network, ...]:
    """``[http] trusted_proxies`` (addresses or networks, comma-separated) as networks."""
    networks: list[Network] = []
    for item in (part.strip() for part in setting.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise IvrError(f"[http] trusted_proxies: {item!r} is not an address or a network ({exc})",
                           hint="e.g. trusted_proxies = \"10.0.0.5, 10.1.0.0/24\" (IVR_HTTP_TRUSTED_PROXIES)",
                           error_id="bad-trusted-proxies") from exc
    return tuple(networks)


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


class RefusalGuard:
    """One per listener: counts refusals per client address and slows each to the floor."""

    def __init__(self, failures: int = DEFAULT_FAILURES, window_s: float = DEFAULT_WINDOW_S, *,
                 floor_s: float = REFUSAL_FLOOR_S, clock: Callable[[], float] = time.monotonic,
                 pause: Callable[[float], Awaitable[object]] = asyncio.sleep, max_clients: int = MAX_CLIENTS,
                 trusted_proxies: tuple[Network, ...] = ()) -> None:
        # The per-address window is the rate limiter's: refusals are what it counts here.
        self._window = SlidingWindowLimiter(failures, window_s, clock=clock, max_numbers=max_clients)
        self.floor_s = floor_s
        self.clock = clock
        self._pause = pause
        self.locked_out = 0  # requests answered 429, for the log and the tests
        self.trusted_proxies = trusted_proxies

    def client(self, peer: str, forwarded_for: str = "") -> str:
        """Whom a request's refusals count against: ``peer``, or, when ``peer`` is a trusted
        proxy, the nearest ``X-Forwarded-For`` address that is not one."""
        if not _within(peer, self.trusted_proxies):
            return peer
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            if hop and not _within(hop, self.trusted_proxies):
                return hop
        return peer

    def started(self) -> float:
        """The request's arrival, to pass to :meth:`refused` (the floor counts from here)."""
        return self.clock()

    def locked_for(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0.0 when it may now."""
        wait = self._window.wait(client)
        if wait:
            self.locked_out += 1
        return wait

    async def refused(self, client: str, started: float) -> None:
        """Count one refusal of ``client`` and wait until the floor since ``started`` has passed."""
        self._window.record(client)
        remaining = started + self.floor_s - self.clock()
        if remaining > 0:
            await self._pause(remaining)
