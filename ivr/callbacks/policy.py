"""Per-queue callback policy, from ``config/callbacks.yaml``.

An admin decides, per queue, when a caller is offered a callback (the estimated wait at
which it starts; 0 offers it always; -1 never), how many may wait at once, how a customer
who does not answer is retried, and when its callbacks are dialled (``hours``, a week in
the format of routing.yaml; by default the contact centre's hours, whose timezone and
holidays always apply). How often the waiting hear their place and wait is
``app_queue``'s own ``announce-frequency`` in queues.conf, per queue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.config.problems import Problem, did_you_mean
from ivr.config.reader import ConfigReader, FieldRule, Text, Whole
from ivr.config.source import YMap, read_yaml_mapping
from ivr.errors import ConfigError
from ivr.routing.hours import BusinessHours, Week
from ivr.routing.rules import read_week

NEVER = -1
AGENT_FIRST = "agent_first"
CUSTOMER_FIRST = "customer_first"
MODES = (AGENT_FIRST, CUSTOMER_FIRST)


class CallbacksInvalid(ConfigError):
    def __init__(self, problems: Collection[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("callback policy has problems:\n" + "\n".join(str(p) for p in self.problems),
                         hint="fix config/callbacks.yaml")


@dataclass(frozen=True)
class QueuePolicy:
    """What a queue does about the wait. Times are seconds."""

    offer_after_s: int = 120  # offer a callback when the estimated wait is at least this; 0 always, -1 never
    max_waiting: int = 50  # callbacks waiting in this queue at once; more are refused ("call again later")
    attempts: int = 3  # calls to the customer before we give up and send the SMS
    retry_after_s: int = 120  # between an unanswered attempt and the next
    ring_s: int = 30  # how long the customer's phone rings
    keep_days: int = 2  # a callback not reached in this time is given up (abandoned)
    # agent_first: an agent takes the place, hears a whisper, then we ring the customer;
    # customer_first: the customer is rung when the place is next, and takes it over on answering
    mode: str = AGENT_FIRST
    hours: Week | None = None  # when this queue's callbacks are dialled; None: the contact centre's hours

    def offers_at(self, estimated_wait_s: float) -> bool:
        return self.offer_after_s != NEVER and estimated_wait_s >= self.offer_after_s


RULES: Mapping[str, FieldRule] = {
    "offer_after_s": Whole(NEVER, 86_400), "max_waiting": Whole(0, 100_000), "attempts": Whole(1, 20),
    "retry_after_s": Whole(5, 86_400), "ring_s": Whole(5, 120),  "keep_days": Whole(1, 30), "mode": Text(),
}


@dataclass(frozen=True)
class CallbackPolicy:
    default: QueuePolicy = QueuePolicy()
    queues: Mapping[str, QueuePolicy] = field(default_factory=dict)

    def for_queue(self, queue: str) -> QueuePolicy:
        return self.queues.get(queue, self.default)

    def hours(self, queue: str, contact_centre: BusinessHours) -> BusinessHours:
        """When ``queue``'s callbacks are dialled: its own week, in the contact centre's timezone
        and with its holidays; the contact centre's hours when the queue sets none."""
        week = self.for_queue(queue).hours
        if week is None:
            return contact_centre
        return BusinessHours(contact_centre.timezone, dict(week), contact_centre.holidays)


def load_callback_policy(path: Path, known_queues: Collection[str] = ()) -> CallbackPolicy:
    """The policy in ``path``; the built-in defaults when it does not exist; :class:`CallbacksInvalid`."""
    if not path.exists():
        return CallbackPolicy()
    problems: list[Problem] = []
    data = read_yaml_mapping(path, problems)
    if data is None:
        raise CallbacksInvalid(problems)
    reader = ConfigReader(problems)
    reader.fields(data, ("defaults", "queues"), (), "callbacks.yaml")
    default = _policy(reader, reader.section(data, "defaults", "callbacks.yaml"), QueuePolicy(), "'defaults'")
    queues: dict[str, QueuePolicy] = {}
    section = reader.section(data, "queues", "callbacks.yaml")
    if section is not None:
        for queue in section:
            if known_queues and queue not in known_queues:
                reader.problem(section.key_loc(queue),
                               f"queue '{queue}' is not in queues.conf{did_you_mean(str(queue), known_queues)}")
            queues[str(queue)] = _policy(reader, reader.section(section, queue, f"queue '{queue}'"), default,
                                         f"queue '{queue}'")
    if problems:
        raise CallbacksInvalid(problems)
    return CallbackPolicy(default, queues)


def _policy(reader: ConfigReader, m: YMap | None, base: QueuePolicy, what: str) -> QueuePolicy:
    policy = reader.record(m, base, RULES, what, also=("hours",))
    hours = reader.section(m, "hours", what) if m is not None else None
    if hours is not None:
        policy = dataclasses.replace(policy, hours=read_week(reader, hours, f"{what} hours", prefix=f"{what}: "))
    if policy.mode not in MODES and m is not None:
        reader.problem(m.value_loc("mode"), f"{what}: mode '{policy.mode}' is not one of {', '.join(MODES)}")
    return policy

