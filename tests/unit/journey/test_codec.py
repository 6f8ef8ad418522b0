"""What every backend accepts and refuses, decided in one place before anything is written."""

from __future__ import annotations

import json

import pytest

from ivr.journey.codec import agent_of, encode, prepare
from ivr.journey.errors import RequestInvalid
from ivr.journey.ports import StampedEvent


def event(**data: object) -> StampedEvent:
    return StampedEvent(1_700_000_000.0, "voice", "call-1", "node_entered", dict(data))


@pytest.mark.parametrize("key", ["", "7999\x00"])
def test_a_key_that_is_empty_or_holds_a_nul_is_refused(key: str) -> None:
    with pytest.raises(RequestInvalid, match="journey key"):
        prepare(key, [event()])


def test_data_that_is_not_json_is_refused_naming_the_event() -> None:
    with pytest.raises(RequestInvalid, match=r"event 1 \('node_entered'\)"):
        prepare("k", [event(), event(when=object())])


def test_something_other_than_a_stamped_event_is_refused() -> None:
    with pytest.raises(RequestInvalid, match="StampedEvent"):
        prepare("k", [{"type": "node_entered"}])  # type: ignore[list-item]


def test_an_empty_interaction_is_refused() -> None:
    with pytest.raises(RequestInvalid, match="interaction"):
        prepare("k", [StampedEvent(1.0, "voice", "", "hangup")])


def test_prepared_data_is_redacted_json() -> None:
    [row] = prepare("k", [event(node="auth", pin="1234")])

    assert json.loads(row.data_json) == {"node": "auth", "redacted": ["pin"]}


def test_a_literal_backslash_u0000_is_text_not_a_nul() -> None:
    assert json.loads(encode({"text": "\\u0000 and \x00"}, "t")) == {"text": "\\u0000 and \ufffd"}


@pytest.mark.parametrize(("data", "agent"), [({"agent": "anna"}, "anna"), ({"agent": 7}, "7"), ({"agent": ""}, None),
                                             ({"agent": True}, None), ({}, None)])
def test_agent_of_reads_a_text_or_numeric_agent_id(data: dict[str, object], agent: str | None) -> None:
    assert agent_of(data) == agent
