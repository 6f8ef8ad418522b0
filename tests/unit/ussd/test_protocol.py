"""The aggregator's fields into a UssdRequest, and everything that is refused on the way."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.ussd.errors import BadRequest
from ivr.ussd.protocol import (
    FORM,
    JSON,
    MAX_FIELDS,
    MAX_NOTE,
    UssdReply,
    UssdRequest,
    UssdSessionEnd,
    _form_fields,
    parse_request,
    parse_session_end,
)

GOOD = {"sessionId": "ATUid_1", "serviceCode": "*111#", "phoneNumber": "+79991234567", "networkCode": "62120",
        "text": "3*1"}


def form(**changes: str | None) -> bytes:
    fields = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    return urlencode(fields).encode()


def parse(body: bytes, content_type: str = FORM) -> UssdRequest:
    return parse_request(content_type, body, max_text=256)


def test_a_form_request_becomes_our_request() -> None:
    assert parse(form()) == UssdRequest("ATUid_1", "*111#", "+79991234567", "62120", "3*1", ("3", "1"))


def test_a_json_request_is_read_like_a_form() -> None:
    assert parse(json.dumps(GOOD).encode(), JSON) == parse(form())


def test_the_first_request_has_no_inputs() -> None:
    assert parse(form(text="")).inputs == ()


def test_an_empty_answer_is_an_empty_input() -> None:
    assert parse(form(text="1*")).inputs == ("1", "")


def test_a_missing_text_is_the_first_request() -> None:
    assert parse(form(text=None)).text == ""


def test_a_service_code_without_its_hash_gets_one() -> None:
    assert parse(form(serviceCode="*111*2")).service_code == "*111*2#"


def test_the_number_is_normalised_to_e164() -> None:
    assert parse(form(phoneNumber="8 999 123-45-67")).number == "+79991234567"


def test_an_unescaped_plus_in_a_form_is_still_a_number() -> None:
    body = form().replace(b"%2B79991234567", b"+79991234567")
    assert parse(body).number == "+79991234567"


def test_a_json_number_may_be_a_json_number() -> None:
    assert parse(json.dumps({**GOOD, "phoneNumber": 79991234567}).encode(), JSON).number == "+79991234567"


@pytest.mark.parametrize("field", ["sessionId", "serviceCode", "phoneNumber"])
def test_a_missing_field_is_refused(field: str) -> None:
    with pytest.raises(BadRequest, match=field):
        parse(form(**{field: None}))


@pytest.mark.parametrize("field", ["sessionId", "serviceCode", "phoneNumber"])
def test_an_empty_field_is_refused(field: str) -> None:
    with pytest.raises(BadRequest, match=field):
        parse(form(**{field: "  "}))


def test_an_over_long_text_is_refused() -> None:
    with pytest.raises(BadRequest, match="text: longer than 256"):
        parse(form(text="1*" * 128 + "1"))


@pytest.mark.parametrize("value", ["1\x00", "\x1b[2J", "1\r\n2", "\x7f", "\u0085"])
def test_control_characters_are_refused(value: str) -> None:
    with pytest.raises(BadRequest, match="control"):
        parse(form(text=value))


def test_a_lone_surrogate_from_json_is_refused() -> None:
    with pytest.raises(BadRequest):
        parse(b'{"sessionId": "s", "serviceCode": "*111#", "phoneNumber": "+79991234567", "text": "\\ud800"}', JSON)


def test_a_body_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(BadRequest, match="UTF-8"):
        parse(form() + b"&x=\xff\xfe")


def test_a_percent_encoded_value_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(BadRequest, match="UTF-8"):
        parse(form() + b"&text2=%ff%fe")


@pytest.mark.parametrize("number", ["anonymous", "12", "+7999123456789012345", "Restricted", "+7 999 ☎"])
def test_a_number_that_does_not_parse_is_refused(number: str) -> None:
    with pytest.raises(BadRequest, match="phoneNumber: not a phone number"):
        parse(form(phoneNumber=number))


@pytest.mark.parametrize("code", ["100", "*abc#", "#100#", "**#", "*1" * 20 + "#"])
def test_a_malformed_service_code_is_refused(code: str) -> None:
    with pytest.raises(BadRequest, match="serviceCode"):
        parse(form(serviceCode=code))


def test_a_session_id_with_spaces_is_refused() -> None:
    with pytest.raises(BadRequest, match="sessionId"):
        parse(form(sessionId="a b"))


def test_a_field_given_twice_is_refused() -> None:
    with pytest.raises(BadRequest, match="text: given twice"):
        parse(form() + b"&text=9")


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"{", b"[" * 5000 + b"]" * 5000])
def test_json_that_is_not_an_object_is_refused(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse(body, JSON)


def test_json_fields_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(BadRequest, match="text: must be a string"):
        parse(json.dumps({**GOOD, "text": ["1"]}).encode(), JSON)


def test_another_content_type_is_refused() -> None:
    with pytest.raises(BadRequest, match="Content-Type"):
        parse(form(), "text/xml")


def test_replies_render_as_con_and_end() -> None:
    assert UssdReply(False, "Menu\n1. A").render() == "CON Menu\n1. A"
    assert UssdReply(True, "Bye").render() == "END Bye"
    assert UssdReply.parse("END Bye") == UssdReply(True, "Bye")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab=&%+2F0CcE9xf8é;", max_size=40))
def test_a_form_is_read_as_urllib_parse_qsl_reads_it(body: str) -> None:
    try:
        expected: tuple[object, ...] = ("fields", dict(parse_qsl(body, keep_blank_values=True, errors="strict",
                                                                 max_num_fields=MAX_FIELDS)))
        if len(parse_qsl(body, keep_blank_values=True, errors="strict")) != len(expected[1]):  # type: ignore[arg-type]
            expected = ("refused",)  # a field given twice
    except ValueError:  # not UTF-8 (UnicodeDecodeError), or too many fields
        expected = ("refused",)
    try:
        got: tuple[object, ...] = ("fields", _form_fields(body))
    except BadRequest:
        got = ("refused",)
    assert got == expected


def test_an_end_of_session_notification_becomes_our_session_end() -> None:
    body = urlencode({"date": "2026-11-22 10:11:12", "sessionId": "ATUid_1", "serviceCode": "*111#",
                      "networkCode": "62120", "phoneNumber": "+79991234567", "status": "Incomplete",
                      "cost": "KES 0.00", "durationInMillis": "14250", "hopsCount": "3", "input": "2*1234",
                      "lastAppResponse": "CON Tariffs", "errorMessage": ""}).encode()
    assert parse_session_end(FORM, body) == UssdSessionEnd("ATUid_1", "*111#", "+79991234567", "incomplete",
                                                           14250, 3, "")


def test_a_long_error_message_is_cut_and_made_printable() -> None:
    body = urlencode({"sessionId": "s", "serviceCode": "*111#", "phoneNumber": "+79991234567",
                      "status": "Failed", "errorMessage": "\x07bad\r\n" + "x" * 500}).encode()
    end = parse_session_end(FORM, body)
    assert end.error.startswith("bad x") and len(end.error) == MAX_NOTE


@pytest.mark.parametrize("changes", [{"status": "Done"}, {"status": None}, {"hopsCount": "three"},
                                     {"durationInMillis": "-5"}, {"sessionId": None}])
def test_a_malformed_notification_is_refused(changes: dict[str, str | None]) -> None:
    fields = {"sessionId": "s", "serviceCode": "*111#", "phoneNumber": "+79991234567", "status": "Success",
              **changes}
    with pytest.raises(BadRequest):
        parse_session_end(FORM, urlencode({k: v for k, v in fields.items() if v is not None}).encode())
