"""config/routing.yaml: the ordered rules, each decision with its reason in plain words."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from ivr.routing.rules import (
    RouteRequest,
    RoutingInvalid,
    analyse_routing,
    area_code,
    decide,
    load_routing,
    queues_from_conf,
)

REPO = Path(__file__).resolve().parents[3]
QUEUES = queues_from_conf(REPO / "config/asterisk/queues.conf")
CONFIG = load_routing(REPO / "config/routing.yaml", QUEUES)
NOON_MONDAY = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)  # 12:00 in Moscow


def route(customer=None, number="+79991234567", last_agent=None, moment=NOON_MONDAY):
    request = RouteRequest("support", 0, "caller asked for an operator", customer or {}, number, "100", last_agent)
    return decide(CONFIG, request, moment)


def test_blacklisted_number_hears_an_announcement_and_never_reaches_an_agent():
    decision = route({"blacklisted": True, "manager": "agent2"})

    assert decision.kind == "hangup"
    assert decision.reason == "blacklisted number"
    assert decision.announcement_for("ru").startswith("Мы не можем")


def test_overdue_debt_goes_to_collections_with_the_amount_in_the_reason():
    decision = route({"debt": Decimal("1250.00"), "overdue_days": 45})

    assert (decision.queue, decision.priority) == ("collections", 5)
    assert decision.reason == "caller asked for an operator; collections: overdue 45 days, 1,250.00"


def test_personal_manager_is_rung_first_and_the_vip_priority_is_kept_for_the_queue():
    decision = route({"manager": "agent2", "segment": "vip"})

    assert decision.agent_first == "PJSIP/agent2"
    assert (decision.queue, decision.priority) == ("support", 10)


def test_agent_of_the_last_call_is_tried_first():
    assert route(last_agent="agent3").agent_first == "PJSIP/agent3"


def test_personal_manager_wins_over_the_last_agent():
    assert route({"manager": "agent2"}, last_agent="agent3").agent_first == "PJSIP/agent2"


def test_vip_gets_a_higher_priority_in_the_same_queue():
    decision = route({"segment": "vip"})

    assert (decision.queue, decision.priority) == ("support", 10)
    assert decision.reason.endswith("VIP customer: priority 10")


def test_st_petersburg_area_code_goes_to_the_regional_queue():
    assert route(number="+78121234567").queue == "support-spb"


def test_unknown_caller_keeps_the_queue_the_menu_asked_for():
    decision = route()

    assert (decision.kind, decision.queue, decision.priority, decision.agent_first) == ("queue", "support", 0, None)


OFFICE_WEEK = """timezone: Europe/Moscow
hours: {mon: "08:00-22:00", tue: "08:00-22:00", wed: "08:00-22:00", thu: "08:00-22:00", fri: "08:00-22:00",
        sat: "09:00-13:00, 14:00-20:00", sun: closed}
after_hours: {en: "We are closed.", ru: "Мы закрыты."}
"""


def test_outside_business_hours_the_caller_gets_the_after_hours_announcement(tmp_path):
    config = load_routing(write(tmp_path, OFFICE_WEEK), QUEUES)
    late = dt.datetime(2026, 11, 23, 20, 30, tzinfo=dt.UTC)  # Monday 23:30 in Moscow

    decision = decide(config, RouteRequest("support", 0, "caller asked for an operator"), late)

    assert decision.kind == "hangup"
    assert decision.reason == "after hours: closed at Mon 23:30 (Europe/Moscow)"
    assert decision.announcement_for("ru") == "Мы закрыты."


def test_inside_business_hours_the_rules_apply(tmp_path):
    config = load_routing(write(tmp_path, OFFICE_WEEK), QUEUES)

    assert decide(config, RouteRequest("support", 0, "x"), NOON_MONDAY).kind == "queue"


def test_lunch_break_between_two_spans_is_closed(tmp_path):
    config = load_routing(write(tmp_path, OFFICE_WEEK), QUEUES)
    lunch = dt.datetime(2026, 11, 28, 10, 30, tzinfo=dt.UTC)  # Saturday 13:30 in Moscow

    assert decide(config, RouteRequest("support", 0, "x"), lunch).kind == "hangup"


def test_a_holiday_is_closed_all_day():
    assert route(moment=dt.datetime(2027, 1, 7, 9, 0, tzinfo=dt.UTC)).kind == "hangup"


@pytest.mark.parametrize(("number", "code"), [
    ("+78121234567", "812"),  # St Petersburg landline
    ("+74951234567", "495"),  # Moscow landline
    ("+79991234567", "999"),  # a mobile operator's code
    ("+4930123456", None),  # Berlin: not a number of the home country
    ("+7812", None),  # too short to carry an area code
    ("not a number", None),
    (None, None),
])
def test_area_code_is_the_home_countrys_national_destination_code(number, code):
    assert area_code(number) == code


def write(tmp_path, text):
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    return path


def messages(tmp_path, text):
    return [str(p) for p in analyse_routing(write(tmp_path, text), QUEUES)[1]]


def test_unknown_queue_is_reported_with_its_line(tmp_path):
    out = messages(tmp_path, "rules:\n  - name: x\n    queue: colections\n")
    assert out == [f"{tmp_path}/routing.yaml:3:12: queue 'colections' is not defined in queues.conf; "
                   "did you mean 'collections'?"]


def test_unknown_field_suggests_the_right_one(tmp_path):
    out = messages(tmp_path, "rules:\n  - name: x\n    wehn: customer.vip\n")
    assert out == [f"{tmp_path}/routing.yaml:3:5: unknown field 'wehn' in rule 'x'; did you mean 'when'?"]


def test_template_with_an_undefined_name_is_reported(tmp_path):
    out = messages(tmp_path, "rules:\n  - name: x\n    when: custmer.vip\n")
    assert out == [f"{tmp_path}/routing.yaml:3:11: template in rule 'x' uses undefined name 'custmer'; "
                   "did you mean 'customer'?"]


def test_bad_business_hours_are_reported(tmp_path):
    out = messages(tmp_path, "hours:\n  mon: '9-18'\n")
    assert out == [f"{tmp_path}/routing.yaml:2:8: hours for mon: '9-18' is not HH:MM-HH:MM or 'closed'"]


def test_loading_invalid_rules_raises_with_every_problem(tmp_path):
    with pytest.raises(RoutingInvalid) as err:
        load_routing(write(tmp_path, "timezone: Mars/Olympus\nrules:\n  - name: x\n    hangup: true\n"), QUEUES)
    assert [p.message for p in err.value.problems] == [
        "unknown timezone 'Mars/Olympus'", "rule 'x' hangs up and needs an 'announcement' per language"]
