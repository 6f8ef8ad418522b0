"""The agents' numbers from the journey: AHT, time to answer, transfers per call, first-contact resolution."""

from __future__ import annotations

from ivr.journey.kpi import KpiAccumulator, fold
from ivr.journey.ports import StampedEvent
from tests.clock import T0

HOUR = 3600.0
WINDOW = 72 * HOUR


def call(key: str, uid: str, at: float, *, queue: str = "collections", reason: str = "overdue", hold: int = 10,
         talk: int = 100, transfer_to: str | None = None) -> list[tuple[str, StampedEvent]]:
    events = [StampedEvent(at, "voice", uid, "route_decided", {"kind": "queue", "queue": queue, "reason": reason}),
              StampedEvent(at + hold, "voice", uid, "agent_connected", {"agent": "a1", "queue": queue,
                                                                        "hold_s": hold})]
    if transfer_to:
        events += [StampedEvent(at + hold + 30, "voice", uid, "call_transferred", {"by": "a1", "to": transfer_to}),
                   StampedEvent(at + hold + 31, "voice", uid, "agent_completed", {"agent": "a1", "queue": queue,
                                                                                  "talk_s": 30}),
                   StampedEvent(at + hold + 40, "voice", uid, "agent_connected", {"agent": "a2", "queue": transfer_to,
                                                                                  "hold_s": 9})]
    else:
        events.append(StampedEvent(at + hold + talk, "voice", uid, "agent_completed",
                                   {"agent": "a1", "queue": queue, "talk_s": talk}))
    return [(key, e) for e in events]


def test_average_handle_time_is_talk_time_per_completed_agent_part() -> None:
    k = fold([*call("C1", "u1", T0, talk=100), *call("C2", "u2", T0 + 10, talk=200)], horizon=T0 + WINDOW * 2)

    collections = k.agents.by(0)["collections"]
    assert (collections.handled, collections.aht_s) == (2, 150.0)


def test_time_to_answer_is_the_queue_wait_per_answer() -> None:
    k = fold([*call("C1", "u1", T0, hold=10), *call("C2", "u2", T0, hold=30)])

    assert k.agents.by(0)["collections"].answer_s == 20.0


def test_transfers_per_call_count_each_hop_against_the_queue_the_call_was_in() -> None:
    k = fold([*call("C1", "u1", T0, transfer_to="experts"), *call("C2", "u2", T0 + 5)])

    assert k.agents.by(0)["collections"].transfers_per_call == 0.5
    assert k.agents.by(1)["overdue"].transfers == 1
    assert k.agents.by(0)["experts"].calls == 0  # the transferred call counts once, where it was first answered


def test_a_call_with_no_new_contact_within_the_window_is_resolved_at_first_contact() -> None:
    k = fold(call("C1", "u1", T0), horizon=T0 + WINDOW + HOUR)

    assert (k.agents.total.fcr_resolved, k.agents.total.fcr_repeat, k.agents.fcr_pending) == (1, 0, 0)


def test_a_new_contact_on_any_channel_within_the_window_makes_it_a_repeat() -> None:
    ussd_next_day = ("C1", StampedEvent(T0 + 24 * HOUR, "ussd", "ussd-9", "ussd_request", {"code": "*100#"}))

    k = fold([*call("C1", "u1", T0), ussd_next_day], horizon=T0 + WINDOW + HOUR)

    assert (k.agents.total.fcr_resolved, k.agents.total.fcr_repeat) == (0, 1)
    assert k.agents.by(1)["overdue"].fcr == 0.0


def test_another_customers_contact_is_no_repeat() -> None:
    k = fold([*call("C1", "u1", T0), *call("C2", "u2", T0 + HOUR)], horizon=T0 + WINDOW * 2)

    assert k.agents.total.fcr_resolved == 2


def test_a_contact_still_inside_its_window_is_pending_not_resolved() -> None:
    k = fold(call("C1", "u1", T0), horizon=T0 + HOUR)

    assert (k.agents.total.fcr_resolved, k.agents.fcr_pending) == (0, 1)


def test_a_report_sees_a_repeat_after_its_range_but_counts_nothing_else_from_there() -> None:
    later = [("C1", StampedEvent(T0 + 2 * HOUR, "sms", "sms-1", "sms_received", {"text": "HELP"}))]

    k = fold(call("C1", "u1", T0), since=T0, until=T0 + HOUR, later=later, horizon=T0 + WINDOW + HOUR)

    assert k.agents.total.fcr_repeat == 1 and k.interactions == {"voice": 1}


def test_the_live_accumulator_settles_fcr_by_its_clock() -> None:
    now = [T0]
    acc = KpiAccumulator(fcr_window_s=WINDOW, clock=lambda: now[0])
    for key, event in call("C1", "u1", T0):
        acc.add(key, event)
    assert acc.snapshot().agents.fcr_pending == 1

    now[0] = T0 + WINDOW + HOUR

    assert acc.snapshot().agents.total.fcr_resolved == 1


def test_the_report_and_metrics_show_the_agent_numbers() -> None:
    from ivr.metrics.prometheus import render_prometheus

    k = fold(call("C1", "u1", T0), horizon=T0 + WINDOW + HOUR)

    assert "Agents by queue" in k.to_text() and "collections" in k.to_text()
    assert k.to_dict()["agents"]["by_queue"]["collections"]["aht_s"] == 100.0
    text = render_prometheus(k)
    assert 'ivr_agent_handle_seconds_total{queue="collections",reason="overdue"} 100.0' in text
    assert 'ivr_fcr_contacts_total{queue="collections",reason="overdue",outcome="resolved"} 1' in text
