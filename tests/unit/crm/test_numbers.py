"""Caller ID normalisation: one E.164 key per customer, and None for anything that is not a number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.crm.numbers import normalise


@pytest.mark.parametrize("raw", ["8 999 123-45-67", "+7 (999) 1234567", "79991234567", "+79991234567",
                                 "9991234567", "8-999-123-45-67", " +7 999 123 45 67 "])
def test_the_ways_people_write_one_russian_number_give_one_key(raw: str) -> None:
    assert normalise(raw) == "+79991234567"


def test_st_petersburg_landline_keeps_its_area_code() -> None:
    assert normalise("8 (812) 400-05-18") == "+78124000518"


def test_a_foreign_number_in_international_form_is_kept() -> None:
    assert normalise("+1 650 253 0000") == "+16502530000"


def test_default_region_reads_national_numbers_of_another_country() -> None:
    assert normalise("(650) 253-0000", default_region="US") == "+16502530000"


@pytest.mark.parametrize("raw", ["", None, "anonymous", "Anonymous", "Restricted", "unknown", "Private",
                                 "withheld", "asterisk"])
def test_withheld_or_anonymous_caller_id_is_no_number(raw: str | None) -> None:
    assert normalise(raw) is None


@pytest.mark.parametrize("raw", ["00", "100", "0611", "+", "---", "12345678901234567890123", "+7 999 CALL-ME-1",
                                 "+7999\x001234567", "+7999\n1234567", "\x1b[2J79991234567", "8" * 500])
def test_garbage_and_control_characters_are_no_number(raw: str) -> None:
    assert normalise(raw) is None


@given(st.text(max_size=60))
def test_any_text_gives_e164_or_none_and_never_raises(raw: str) -> None:
    result = normalise(raw)
    assert result is None or (result.startswith("+") and result[1:].isdigit())
