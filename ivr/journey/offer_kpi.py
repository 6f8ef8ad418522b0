"""Offers and topics: how each offer converts, and through which channel each topic comes.

An offer is ``offer_presented`` then at most one ``offer_answered`` (accepted, declined,
ignored); one presented and never answered (the caller hung up on it) counts as ignored.
A topic is what an interaction was about: a menu node's ``topic`` (``node_entered``) or
the ``topic`` another system gave its event. Each interaction counts once per topic, on
its own channel, so "roaming: voice 120, web 340, sms 15" says where roaming questions
come from, and where self-service could meet them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.journey.events import NODE_ENTERED, OFFER_ANSWERED, OFFER_PRESENTED
from ivr.journey.ports import StampedEvent

ANSWERS = ("accepted", "declined", "ignored")
MAX_OFFERS = 200  # distinct offer codes and topics kept: a label per CRM campaign, not per customer
MAX_SEEN = 100_000  # (interaction, topic) pairs remembered to count each once


@dataclass(frozen=True)
class OfferCounts:
    presented: int = 0
    accepted: int = 0
    declined: int = 0

    @property
    def ignored(self) -> int:
        return max(0, self.presented - self.accepted - self.declined)

    @property
    def conversion(self) -> float | None:
        return self.accepted / self.presented if self.presented else None

    def to_dict(self) -> dict[str, Any]:
        return {"presented": self.presented, "accepted": self.accepted, "declined": self.declined,
                "ignored": self.ignored,
                "conversion": None if self.conversion is None else round(self.conversion, 4)}


@dataclass(frozen=True)
class OfferKpis:
    offers: Mapping[str, OfferCounts] = field(default_factory=dict)
    topics: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # topic -> channel -> interactions

    def to_dict(self) -> dict[str, Any]:
        return {"offers": {code: c.to_dict() for code, c in sorted(self.offers.items())},
                "topics": {topic: dict(channels) for topic, channels in sorted(self.topics.items())}}


class OfferStats:
    def __init__(self) -> None:
        self._presented: Counter[str] = Counter()
        self._answers: dict[str, Counter[str]] = {}
        self._topics: dict[str, Counter[str]] = {}
        self._seen: dict[tuple[str, str], None] = {}

    def add(self, event: StampedEvent, data: Mapping[str, Any]) -> None:
        if event.type == OFFER_PRESENTED:
            code = self._code(data)
            if code is not None:
                self._presented[code] += 1
        elif event.type == OFFER_ANSWERED:
            code, answer = self._code(data), data.get("answer")
            if code is not None and answer in ("accepted", "declined"):
                self._answers.setdefault(code, Counter())[str(answer)] += 1
        topic = data.get("topic") if event.type == NODE_ENTERED or "event_id" in data else None
        if isinstance(topic, str) and topic:
            self._topic(event, topic)

    def snapshot(self) -> OfferKpis:
        offers = {code: OfferCounts(n, self._answers.get(code, Counter())["accepted"],
                                    self._answers.get(code, Counter())["declined"])
                  for code, n in self._presented.items()}
        return OfferKpis(offers, {t: dict(c) for t, c in self._topics.items()})

    def _code(self, data: Mapping[str, Any]) -> str | None:
        code = data.get("offer")
        if not isinstance(code, str) or not code:
            return None
        if code not in self._presented and len(self._presented) >= MAX_OFFERS:
            return "other"
        return code

    def _topic(self, event: StampedEvent, topic: str) -> None:
        mark = (event.interaction, topic)
        if mark in self._seen:
            return
        if len(self._seen) >= MAX_SEEN:
            self._seen.pop(next(iter(self._seen)))
        self._seen[mark] = None
        if topic not in self._topics and len(self._topics) >= MAX_OFFERS:
            topic = "other"
        self._topics.setdefault(topic, Counter())[event.channel] += 1
