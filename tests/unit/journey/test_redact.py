"""The store's privacy rule: PINs, passwords and masked input never reach the journey."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.journey.ports import StampedEvent
from ivr.journey.redact import _redact_walking, is_secret_name, redact


def event(type_: str = "input_collected", **data: object) -> StampedEvent:
    return StampedEvent(1_700_000_000.0, "voice", "call-1", type_, dict(data))


@pytest.mark.parametrize("name", ["pin", "PIN", "new_pin", "pinCode", "pin-code", "card_pin", "password",
                                  "userPassword", "passcode", "otp", "cvv", "masked_value", "secret", "pincode"])
def test_names_containing_a_secret_word_are_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["spin", "shipping", "pinned", "opinion", "passport", "node", "input", "key"])
def test_names_merely_containing_secret_letters_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


def test_a_pin_value_is_dropped_and_its_path_recorded() -> None:
    assert redact(event(node="auth", pin="1234")).data == {"node": "auth", "redacted": ["pin"]}


def test_a_secret_in_a_list_of_objects_is_dropped_with_its_index() -> None:
    redacted = redact(event("action_requested", args={"cards": [{"pan": "last4:1234", "pin": "0000"}]}))

    assert redacted.data == {"args": {"cards": [{"pan": "last4:1234"}]}, "redacted": ["args.cards[0].pin"]}


def test_a_boolean_under_a_secret_name_is_kept() -> None:
    assert redact(event(pin_ok=False)).data == {"pin_ok": False}


def test_a_masked_flag_that_is_not_true_is_dropped_as_a_secret() -> None:
    assert redact(event(node="auth", masked="1234")).data == {"node": "auth", "redacted": ["masked"]}


def test_a_masked_event_keeps_only_structural_scalars() -> None:
    redacted = redact(event(node="auth", var="card", masked=True, value="4111", count=2, extra={"node": "x"}))

    assert redacted.data == {"node": "auth", "var": "card", "masked": True, "count": 2,
                             "redacted": ["extra", "value"]}


def test_an_event_without_secrets_is_returned_unchanged() -> None:
    original = event(node="main", key="2")

    assert redact(original) is original


def test_redaction_keeps_the_event_envelope() -> None:
    redacted = redact(event("key_pressed", pin="1"))

    assert (redacted.at, redacted.channel, redacted.interaction, redacted.type) == (
        1_700_000_000.0, "voice", "call-1", "key_pressed")


def test_redaction_logs_the_dropped_paths_never_the_values(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ivr.journey"):
        redact(event(pin="98765"))

    assert "pin" in caplog.text
    assert "98765" not in caplog.text


_NAMES = st.sampled_from(["node", "key", "pin", "pin_ok", "masked", "password", "kind", "value", "redacted", "spin"])
_FLAT_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5))


@given(st.dictionaries(_NAMES, _FLAT_VALUES, max_size=6))
def test_the_fast_path_for_flat_events_decides_as_the_full_walk_does(data: dict[str, object]) -> None:
    flat = StampedEvent(1_700_000_000.0, "voice", "call-1", "input_collected", data)

    assert redact(flat) == _redact_walking(flat)


# -- free text: an agent's note --------------------------------------------------------------

@pytest.mark.parametrize(("text", "clean", "found"), [
    ("PIN 4821 did not work", "PIN [redacted] did not work", ["pin"]),
    ("card 4111 1111 1111 1111 declined", "card [card number] declined", ["card number"]),
    ("card 4111-1111-1111-1111", "card [card number]", ["card number"]),
    ("password: hunter2 then", "password: [redacted] then", ["password"]),
    ("the otp was 123456", "the otp was [redacted]", ["otp"]),
    ("call back on +7 999 123 45 67", "call back on +7 999 123 45 67", []),  # a phone number is not a card
    ("spin class at 12, shipping 3 days", "spin class at 12, shipping 3 days", []),
    ("", "", []),
])
def test_free_text_loses_card_numbers_and_spelled_out_secrets(text, clean, found) -> None:
    from ivr.journey.redact import redact_text

    assert redact_text(text) == (clean, found)
