"""The journey store as the drivers see it: append stamped events for one interaction.

Drivers depend on :class:`JourneySink` (append only); the agent desktop, the router and
the USSD gateway depend on :class:`JourneyStore`, or on the smallest part they need
(:class:`KvStore` for session state and context tokens). Every backend (memory, SQLite,
PostgreSQL) passes the same contract suite, ``tests/integration/journey/test_store_contract.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ivr.journey.errors import RequestInvalid

Clock = Callable[[], float]
"""Unix time in seconds; injected so tests can move time (expiry, windows)."""

MAX_RANGE_LIMIT = 1_000_000
"""The most events one :meth:`JourneyStore.between` call returns: a day of a busy centre, not a year."""


@dataclass(frozen=True)
class StampedEvent:
    """A journey event as stored: when, on which channel, for which call or session."""

    at: float  # unix time, seconds
    channel: str  # voice | ussd | sms
    interaction: str  # the call's uniqueid, the USSD session id, the SMS id
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def __init__(self, at: float, channel: str, interaction: str, type: str,  # noqa: A002 - the field's name
                 data: dict[str, Any] | None = None) -> None:
        # Frozen, but filled in one step instead of five object.__setattr__ calls: every
        # step of every channel makes several of these (half the cost of building one).
        self.__dict__.update(at=at, channel=channel, interaction=interaction, type=type,
                             data={} if data is None else data)


@dataclass(frozen=True, slots=True)
class KvPut:
    """One kv write of a :meth:`JourneyStore.put_and_append`."""

    namespace: str
    key: str
    value: dict[str, Any]
    ttl_s: float
    #: ``value`` already encoded by :func:`ivr.journey.codec.kv_text`, when the caller needs
    #: the text itself (to compare with a later :meth:`JourneyStore.kv_get_text`): the
    #: store writes it as it is instead of encoding ``value`` a second time.
    text: str | None = None
    #: Compare-and-set. ``None``: write whatever is stored. :data:`ABSENT`: write only if
    #: the key has no live entry. Any other text: write only if the live entry is that
    #: value (the text the caller read or wrote; compared as JSON values, so PostgreSQL's
    #: own rendering matches). When a condition fails, the whole ``put_and_append`` writes
    #: nothing and raises :class:`~ivr.journey.errors.WriteConflict`.
    expect: str | None = None


ABSENT = ""
""":attr:`KvPut.expect` for "the key must have no live entry" (no JSON object is empty text)."""


class JourneySink(Protocol):
    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        """Store ``events`` under ``key`` (customer id, or normalised number when unknown).

        Returning means stored: a driver that got no exception may tell the caller it is done.
        """
        ...


class KvStore(Protocol):
    """A small expiring key-value table, for state several processes must share.

    The USSD gateway keeps session state here (a session's next request may reach another
    process) and :mod:`ivr.journey.tokens` keeps context claims here. An entry is visible
    while the store's clock is before ``put time + ttl_s``; a put replaces the whole value.
    Values are JSON objects. Writes are as durable as journey appends.
    """

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None: ...

    async def kv_put(self, namespace: str, key: str, value: dict[str, Any], ttl_s: float) -> None: ...

    async def kv_delete(self, namespace: str, key: str) -> None: ...


class JourneyStore(JourneySink, KvStore, Protocol):
    """The customer's journey across channels, append-only, plus the shared kv table.

    Semantics every backend keeps:

    - ``append`` is atomic per call and durable when it returns (the process may be killed
      the next instant). Events are never updated or deleted through the store.
    - Before anything is written, each event goes through :func:`ivr.journey.redact.redact`:
      PINs, passwords and masked input are dropped and the drop is recorded in the event.
    - ``data`` must be plain JSON (dict/list/str/int/float/bool/None); what comes back is
      what JSON gives back (tuples become lists).
    - Events that share a timestamp keep their append order.
    """

    async def recent(self, key: str, *, limit: int = 100, since: float | None = None) -> list[StampedEvent]:
        """The key's newest events first, at most ``limit``, only those at or after ``since``."""
        ...

    async def interaction_events(self, interaction: str) -> list[StampedEvent]:
        """One call or session, oldest first: the record an expert or a second agent reads."""
        ...

    async def last_agent(self, key: str, within_s: float) -> str | None:
        """The agent of the newest ``agent_connected`` event of the last ``within_s`` seconds.

        Routing uses it to send a caller back to the person who handled them recently.
        """
        ...

    async def between(self, since: float, until: float, *, limit: int = 100_000) -> list[tuple[str, StampedEvent]]:
        """Every key's events with ``since <= at < until`` as ``(key, event)``, oldest first.

        The reports and KPIs read a time range across all customers with it. Events sharing
        a timestamp keep their append order. At most ``limit`` events, the oldest ones: a
        caller that gets exactly ``limit`` back should narrow the range (a half-open range
        lets consecutive windows tile without counting an event twice).
        """
        ...

    async def put_and_append(self, puts: Sequence[KvPut], key: str, events: Sequence[StampedEvent]) -> None:
        """The kv ``puts`` and the append of ``events`` under ``key`` as one write: all or nothing.

        For a session whose state and journey must never disagree (a USSD request: its record
        says "done" exactly when its events are stored). One transaction, one commit, so it is
        also cheaper than the writes one by one. Refused input writes nothing.
        """
        ...

    async def kv_get_text(self, namespace: str, key: str) -> str | None:
        """The entry's JSON text as the store holds it, undecoded; None when absent or expired.

        For a caller that keeps the entries it wrote, decoded, and reads them back on every
        request (the USSD gateway's session records): equal text means an equal value, so
        nothing needs decoding. SQLite and memory give back the very text written;
        PostgreSQL gives its ``jsonb`` rendering, so a caller must decode when they differ.
        """
        ...

    async def kv_scan(self, namespace: str, *, limit: int = 10_000) -> list[tuple[str, dict[str, Any]]]:
        """The namespace's live entries as ``(key, value)``, by key, at most ``limit``.

        For small namespaces a process must list after a restart (the callbacks waiting
        for their turn); never for sessions or tokens, which are only read by key.
        """
        ...

    async def purge_expired(self) -> int:
        """Delete expired kv entries now; returns how many. Backends also do it as they go."""
        ...

    async def close(self) -> None: ...


def check_range(since: float, until: float, limit: int) -> None:
    """Refuse a :meth:`JourneyStore.between` request every backend would answer differently.

    Infinite bounds are allowed ("everything up to now"); NaN is not: it compares false with
    everything, so one backend would return nothing and another everything.
    """
    for name, bound in (("since", since), ("until", until)):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or math.isnan(bound):
            raise RequestInvalid("between()", f"{name} must be a unix time, got {bound!r}")
    if since > until:
        raise RequestInvalid("between()", f"since ({since}) is after until ({until})")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RANGE_LIMIT:
        raise RequestInvalid("between()", f"limit must be an integer from 1 to {MAX_RANGE_LIMIT}, got {limit!r}")
