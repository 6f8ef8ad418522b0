"""The caller's path through the tree, as events the host stamps and stores.

The journey is what an agent sees when the call lands in a queue ("pressed 3,
asked for roaming, failed twice to enter the PIN"), so it is recorded for every
step, carries no timestamp (the engine has no clock) and never holds a masked value.
The event type names below are the whole vocabulary; stores may rely on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NODE_ENTERED = "node_entered"
NODE_SKIPPED = "node_skipped"  # its `when` was false; data has `else`
KEY_PRESSED = "key_pressed"
SPEECH_MATCHED = "speech_matched"
INPUT_COLLECTED = "input_collected"
INPUT_INVALID = "input_invalid"  # a nomatch
NO_INPUT = "no_input"
ACTION_REQUESTED = "action_requested"
ACTION_RESULT = "action_result"
ROUTE_CHOSEN = "route_chosen"
HANGUP = "hangup"
OFFER_PRESENTED = "offer_presented"
OFFER_ANSWERED = "offer_answered"  # answer: accepted | declined | ignored

EVENT_TYPES = frozenset(
    {
        NODE_ENTERED,
        NODE_SKIPPED,
        KEY_PRESSED,
        SPEECH_MATCHED,
        INPUT_COLLECTED,
        INPUT_INVALID,
        NO_INPUT,
        ACTION_REQUESTED,
        ACTION_RESULT,
        ROUTE_CHOSEN,
        HANGUP,
        OFFER_PRESENTED,
        OFFER_ANSWERED,
    }
)


@dataclass(frozen=True, slots=True)
class JourneyEvent:
    """One step of the journey; ``data`` holds plain JSON-able values."""

    type: str
    data: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.data}
