"""The wait a caller joining now would have, and when a callback is offered."""

from __future__ import annotations

import pytest

from ivr.callbacks.policy import CallbackPolicy, QueuePolicy
from ivr.callbacks.wait import NO_AGENTS_WAIT_S, QueueWait, fixed_facts, template_facts
from ivr.voice.queue_monitor import parse_queue_status

CASES = [  # (waiting, agents, free, talk time) -> estimated wait of one who joins now
    (0, 2, 1, 200, 0),  # a free agent: no wait
    (3, 2, 0, 200, 400),  # 4th in line, 2 agents: two rounds of 200 s
    (4, 2, 0, 200, 600),
    (2, 0, 0, 200, NO_AGENTS_WAIT_S),  # nobody logged in: long
    (1, 1, 0, 0, 360),  # no talk time yet: the default handle time, twice
]


@pytest.mark.parametrize(("waiting", "agents", "free", "talk", "expected"), CASES)
def test_the_estimate_shares_the_callers_ahead_among_the_agents(waiting, agents, free, talk, expected) -> None:
    wait = QueueWait("support", waiting=waiting, agents=agents, free=free, talktime_s=talk)
    assert wait.estimated_wait_s() == expected


def test_a_callback_is_offered_from_the_queues_threshold() -> None:
    policy = CallbackPolicy(QueuePolicy(offer_after_s=300))
    short = template_facts(QueueWait("support", waiting=1, agents=2, talktime_s=100), "support", policy)
    long = template_facts(QueueWait("support", waiting=9, agents=2, talktime_s=100), "support", policy)
    assert (short["offer_callback"], long["offer_callback"]) == (False, True)
    assert long["position"] == 10 and long["estimated_minutes"] == 9


def test_a_never_offering_queue_and_a_full_one_do_not_offer() -> None:
    wait = QueueWait("support", waiting=9, callbacks=2, agents=1, talktime_s=100)
    assert not template_facts(wait, "support", CallbackPolicy(QueuePolicy(offer_after_s=-1)))["offer_callback"]
    assert not template_facts(wait, "support", CallbackPolicy(QueuePolicy(offer_after_s=0, max_waiting=2)))[
        "offer_callback"]


def test_an_unknown_queue_says_nothing_and_offers_nothing() -> None:
    facts = template_facts(None, "support", CallbackPolicy())
    assert facts["known"] is False and facts["offer_callback"] is False and facts["estimated_wait"] == 0


def test_simulate_wait_gives_every_queue_that_wait() -> None:
    queue, every = fixed_facts(600, {"sales": 0}, "support")("")
    assert queue["estimated_wait"] == 600 and every["sales"]["estimated_wait"] == 600
    assert queue["offer_callback"] is True


def test_queue_status_is_read_into_waits_and_ordered_entries() -> None:
    rows = [
        {"Event": "QueueParams", "Queue": "support", "Holdtime": "40", "TalkTime": "180"},
        {"Event": "QueueMember", "Queue": "support", "Status": "1", "Paused": "0", "InCall": "0"},
        {"Event": "QueueMember", "Queue": "support", "Status": "2", "Paused": "0", "InCall": "1"},
        {"Event": "QueueMember", "Queue": "support", "Status": "5", "Paused": "0"},  # not registered
        {"Event": "QueueMember", "Queue": "support", "Status": "1", "Paused": "1"},  # paused
        {"Event": "QueueEntry", "Queue": "support", "Position": "2", "Channel": "Local/cb9@ivr-callback-hold-0001;1",
         "Wait": "30", "Priority": "0"},
        {"Event": "QueueEntry", "Queue": "support", "Position": "1", "Channel": "PJSIP/demo-trunk-1", "Wait": "90"},
    ]
    waits, entries = parse_queue_status(rows)
    assert waits["support"] == QueueWait("support", waiting=2, callbacks=1, agents=2, free=1, holdtime_s=40,
                                         talktime_s=180, longest_s=90)
    assert [e.callback_id for e in entries["support"]] == [None, "cb9"]
