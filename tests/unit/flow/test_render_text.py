"""Text rendering for USSD and SMS screens."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ivr.flow.actions import Collect, MenuChoice, Play, Sound, Text, Typed
from ivr.flow.render_text import format_parts, format_typed, render_screen


def test_currency_has_two_decimals_grouping_and_code() -> None:
    assert format_typed(Typed("currency", Decimal("1250"), "RUB")) == "1,250.00 RUB"


def test_number_is_grouped() -> None:
    assert format_typed(Typed("number", 1234567)) == "1,234,567"


def test_date_is_iso() -> None:
    assert format_typed(Typed("date", dt.date(2024, 3, 9))) == "2024-03-09"


def test_digits_are_shown_as_written() -> None:
    assert format_typed(Typed("digits", "0611")) == "0611"


def test_parts_join_without_space_before_punctuation() -> None:
    parts = (Text("Your balance is"), Typed("currency", Decimal("5"), "RUB"), Text("."))
    assert format_parts(parts) == "Your balance is 5.00 RUB."


def test_sounds_have_no_text_on_screens() -> None:
    assert format_parts((Sound("beep"), Text("Hello"))) == "Hello"


def test_screen_is_prompt_then_one_line_per_option() -> None:
    collect = Collect(
        1, 1, 5.0, 3.0, "", "10", False, options=(MenuChoice("1", "Balance"), MenuChoice("0", "Operator"))
    )
    screen = render_screen([Play((Text("Main menu"),), "main.title", "en"), collect])
    assert screen == "Main menu\n1. Balance\n0. Operator"
