"""config/callbacks.yaml: per-queue policy, its hours, and the errors an admin sees."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ivr.callbacks.policy import CallbacksInvalid, load_callback_policy
from ivr.routing.hours import BusinessHours, parse_spans

ROUND_THE_CLOCK = BusinessHours("Europe/Moscow", {day: parse_spans("00:00-24:00")
                                                  for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                                frozenset({dt.date(2027, 1, 1)}))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callbacks.yaml"
    path.write_text(text)
    return path


def test_the_shipped_policy_loads(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[3] / "config" / "callbacks.yaml"
    policy = load_callback_policy(shipped, {"support", "collections", "vip", "sales"})
    assert policy.for_queue("vip").mode == "customer_first" and policy.for_queue("support").mode == "agent_first"


def test_a_queue_without_hours_dials_in_the_contact_centres_hours(tmp_path: Path) -> None:
    policy = load_callback_policy(write(tmp_path, "defaults:\n  attempts: 2\n"))
    assert policy.hours("support", ROUND_THE_CLOCK) is ROUND_THE_CLOCK


def test_a_queues_own_hours_keep_the_contact_centres_timezone_and_holidays(tmp_path: Path) -> None:
    policy = load_callback_policy(write(tmp_path, 'queues:\n  sales:\n    hours: {mon: "10:00-17:00"}\n'))
    hours = policy.hours("sales", ROUND_THE_CLOCK)
    monday_noon_msk = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)
    sunday_noon_msk = dt.datetime(2027, 3, 7, 9, 0, tzinfo=dt.UTC)
    assert hours.is_open(monday_noon_msk) and not hours.is_open(sunday_noon_msk)
    assert (hours.timezone, hours.holidays) == ("Europe/Moscow", ROUND_THE_CLOCK.holidays)


@pytest.mark.parametrize(("text", "message"), [
    ('defaults:\n  hours: {mon: "9-18"}\n', "callbacks.yaml:2"),
    ('defaults:\n  hours: {monday: "09:00-18:00"}\n', "unknown field 'monday'"),
    ("defaults:\n  mode: robot_first\n", "mode 'robot_first' is not one of agent_first, customer_first"),
])
def test_a_broken_policy_names_the_place_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CallbacksInvalid) as caught:
        load_callback_policy(write(tmp_path, text))
    assert message in str(caught.value)
