"""The SIPp bench's dialplan twin: the controller's AGI commands for one path of keys, as dialplan."""

from __future__ import annotations

from bench.dialplan_twin import WRONG_KEY, to_dialplan

MENU_CALL = [
    "ANSWER",
    'SET VARIABLE "CHANNEL(language)" "en"',
    'STREAM FILE "/s/greeting" "0123456789*#"',
    'STREAM FILE "/s/menu" "0123456789*#"',
    'WAIT FOR DIGIT "5000"',
    "#KEY 2",
    'STREAM FILE "/s/tariffs" "0123456789*#"',
    'WAIT FOR DIGIT "4500"',
    "#KEY 0",
    'STREAM FILE "/s/connecting" ""',
    'SET VARIABLE "IVR_QUEUE" "support"',
    'SET VARIABLE "IVR_CONTEXT_TOKEN" "tok"',
    'SET VARIABLE "IVR_RESULT" "queue"',
]


def test_a_menus_prompts_and_wait_become_one_read_then_a_check_of_the_recorded_key():
    apps = to_dialplan(MENU_CALL)

    assert apps[2:6] == [("Read", "IVR_TWIN_KEY,/s/greeting&/s/menu,1,,1,5"),
                         ("GotoIf", f'$["${{IVR_TWIN_KEY}}" != "2"]?{WRONG_KEY}'),
                         ("Read", "IVR_TWIN_KEY,/s/tariffs,1,,1,4.5"),
                         ("GotoIf", f'$["${{IVR_TWIN_KEY}}" != "0"]?{WRONG_KEY}')]


def test_a_route_to_a_queue_sets_the_controllers_variables_and_continues_in_the_queue_dialplan():
    apps = to_dialplan(MENU_CALL)

    assert apps[6:] == [("Playback", "/s/connecting"), ("Set", "IVR_QUEUE=support"), ("Set", "IVR_CONTEXT_TOKEN=tok"),
                        ("Goto", "ivr-queue,s,1"), ("Hangup", "16")]


def test_interruptible_prompts_with_no_wait_after_them_are_played_through():
    apps = to_dialplan(["ANSWER", 'STREAM FILE "/s/balance" "0123456789*#"', 'SAY NUMBER "15420" "0123456789*#"',
                        'SET VARIABLE "IVR_RESULT" "hangup"'])

    assert apps == [("Answer", ""), ("Playback", "/s/balance"), ("SayNumber", "15420"), ("Hangup", "16"),
                    ("Hangup", "16")]
