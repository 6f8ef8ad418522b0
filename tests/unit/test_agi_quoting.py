"""Every value on an AGI command line is one quoted argument, whatever a caller or CRM put in it."""

from __future__ import annotations

import pytest

from ivr.voice.fastagi import AgiError, AgiHangup, parse_response, quote


def test_plain_value_is_wrapped_in_double_quotes():
    assert quote("beep") == '"beep"'


def test_newline_cannot_start_a_second_command():
    assert quote('Bob\nEXEC System "rm -rf /"') == '"Bob EXEC System \\"rm -rf /\\""'


def test_quote_and_semicolon_stay_inside_the_argument():
    assert quote('"; EXEC System') == '"\\"; EXEC System"'


def test_backslash_is_escaped_so_it_cannot_eat_the_closing_quote():
    assert quote("C:\\") == '"C:\\\\"'


def test_every_control_character_becomes_a_space():
    assert quote("a\x00b\rc\x1bd\x7fe") == '"a b c d e"'


def test_numbers_are_quoted_too():
    assert quote(5000) == '"5000"'


def test_result_with_data_and_endpos_is_parsed():
    resp = parse_response("200 result=49 (timeout) endpos=12345")
    assert (resp.code, resp.result, resp.data) == (200, "49", "timeout")


def test_get_variable_value_with_spaces_is_kept():
    assert parse_response("200 result=1 (hello world)").data == "hello world"


def test_511_dead_channel_is_a_hangup():
    with pytest.raises(AgiHangup):
        parse_response("511 Command Not Permitted on a dead channel or intercept routine")


def test_510_invalid_command_is_an_agi_error():
    with pytest.raises(AgiError, match="510"):
        parse_response("510 Invalid or unknown command")


def test_garbage_is_an_agi_error_not_a_crash():
    with pytest.raises(AgiError, match="unreadable"):
        parse_response("hello")
