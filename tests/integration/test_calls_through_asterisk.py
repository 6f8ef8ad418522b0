"""Real calls through the real Asterisk: SIPp over PJSIP and the AMI caller robot."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asterisk


def test_sipp_call_delivers_rfc2833_digit_to_the_controller(controller, place_call):
    record = place_call(transport="sipp", dnis="90001", keys="1", hold_s=4)

    assert record.errors == []
    assert record.answered
    assert record.channel.startswith("PJSIP/demo-trunk-")
    assert record.digits == "1"
    assert record.variables["IVR_DIGIT"] == "1"
    assert record.variables["IVR_RESULT"] == "hangup"
    assert record.variables["IVR_DNIS"] == "90001"
    assert record.hangup_cause == 16


def test_sipp_caller_pressing_zero_reaches_the_default_queue(controller, place_call):
    record = place_call(transport="sipp", dnis="90001", keys="0", hold_s=2)

    assert record.errors == []
    assert record.queue is not None and record.queue.name == "support"
    assert record.variables["IVR_ROUTE_REASON"] == "caller pressed 0 for an operator"
    assert record.variables.get("IVR_FALLBACK", "") == ""


def test_ami_caller_robot_presses_keys_through_a_local_channel(controller, place_call):
    record = place_call(transport="ami", dnis="90001", keys="0", caller="74951234567", hold_s=2)

    assert record.errors == []
    assert record.answered
    assert record.channel.startswith("Local/90001@inbound-numbers-")
    assert record.digits == "0"
    assert record.queue is not None and record.queue.name == "support"


def test_controller_unreachable_sends_the_call_to_the_fallback_queue(asterisk, place_call):
    record = place_call(transport="sipp", dnis="100", keys="", hold_s=2, delay_s=1)

    assert record.answered
    assert record.variables["AGISTATUS"] == "FAILURE"
    assert record.variables["IVR_FALLBACK"] == "controller-failure"
    assert record.queue is not None and record.queue.name == asterisk.queues.fallback


def test_dialplan_selftest_number_answers_without_the_controller(asterisk, place_call):
    record = place_call(transport="sipp", dnis="90000", keys="5", hold_s=3, delay_s=1)

    assert record.errors == []
    assert record.digits == "5"
    assert record.variables["IVR_DIGIT"] == "5"
    assert record.hangup_cause == 16
