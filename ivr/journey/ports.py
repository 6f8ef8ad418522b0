"""The journey store as the drivers see it: append stamped events for one interaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class StampedEvent:
    """A journey event as stored: when, on which channel, for which call or session."""

    at: float  # unix time, seconds
    channel: str  # voice | ussd | sms
    interaction: str  # the call's uniqueid, the USSD session id, the SMS id
    type: str
    data: dict[str, Any] = field(default_factory=dict)


class JourneySink(Protocol):
    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        """Store ``events`` under ``key`` (customer id, or normalised number when unknown).

        Returning means stored: a driver that got no exception may tell the caller it is done.
        """
        ...
