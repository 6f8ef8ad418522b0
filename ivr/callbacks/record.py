"""One callback as it is stored: who to ring, for which queue, and where it stands.

The record is the durable truth (the journey store's kv table, namespace ``callback``);
the place in ``app_queue`` is rebuilt from it whenever it is lost (an Asterisk restart).
``place_at`` orders the place: the moment the customer would have joined the queue. It
never changes, so a callback re-entered after a restart or a missed attempt goes back
where it was, and callers who joined later stay behind it.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any

NAMESPACE = "callback"
WAITING = "waiting"  # holding its place (or waiting for its due time)
RINGING = "ringing"  # an agent took the place; the customer's phone rings
COMPLETED = "completed"  # the customer answered and talked to the agent
FAILED = "failed"  # every attempt went unanswered; the SMS said we tried
CANCELLED = "cancelled"  # an admin or the customer cancelled it
ABANDONED = "abandoned"  # not reached within the queue's keep_days
OPEN = frozenset({WAITING, RINGING})
FINISHED = frozenset({COMPLETED, FAILED, CANCELLED, ABANDONED})


def new_id(now: float) -> str:
    """``cb`` + milliseconds + 4 hex: sortable, and safe as a dialplan extension and a channel id."""
    return f"cb{int(now * 1000):013d}{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Callback:
    id: str
    key: str  # the customer's journey key
    number: str  # E.164 to ring
    queue: str
    priority: int
    reason: str
    channel: str  # where it was asked for: voice, ussd, sms
    interaction: str  # the call or session that asked
    requested_at: float
    place_at: float  # the time that orders its place among the waiting (see the module)
    due_at: float  # not before (business hours, retry spacing)
    language: str = ""
    name: str = ""  # the customer's name, for the agent's whisper
    state: str = WAITING
    attempts: int = 0
    agent: str = ""
    outcome: str = ""  # the last attempt's dial status, or why it finished

    @property
    def open(self) -> bool:
        return self.state in OPEN

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Callback:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)

    def but(self, **changes: Any) -> Callback:
        return replace(self, **changes)


def order(callback: Callback) -> tuple[int, float, str]:
    """Queue order: higher priority first, then the earlier place."""
    return (-callback.priority, callback.place_at, callback.id)
