"""Wrap-up codes from config/wrapup.yaml: per queue, a default, every mistake with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.agent.wrapup import DEFAULT_CODES, WrapupInvalid, load_wrapup_codes

REPO = Path(__file__).resolve().parents[3]


def test_the_shipped_file_loads_against_the_shipped_queues() -> None:
    from ivr.routing.rules import queues_from_conf

    codes = load_wrapup_codes(REPO / "config" / "wrapup.yaml", queues_from_conf(REPO / "config/asterisk/queues.conf"))

    assert "promise-to-pay" in codes.for_queue("collections")
    assert codes.for_queue("support") == codes.default


def test_without_a_file_every_queue_has_the_built_in_codes(tmp_path: Path) -> None:
    assert load_wrapup_codes(tmp_path / "absent.yaml").for_queue("support") == DEFAULT_CODES


@pytest.mark.parametrize(("text", "where", "message"), [
    ("default: [resolved, Resolved!]\n", ":1:", "must be lower-case"),
    ("default: [resolved, resolved]\n", ":1:", "listed twice"),
    ("default: [ok]\nqueues:\n  nosuch: [ok]\n", ":3:3", "queue 'nosuch' is not in queues.conf"),
    ("default: []\n", ":1:", "at least one wrap-up code"),
    ("default: [ok]\nqueue: {}\n", ":2:1", "unknown field 'queue'"),
    ("default: [ok\n", ":", "YAML syntax error"),
])
def test_a_broken_file_is_refused_with_where_and_why(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = tmp_path / "wrapup.yaml"
    path.write_text(text)

    with pytest.raises(WrapupInvalid) as refused:
        load_wrapup_codes(path, {"support", "collections"})

    assert any(where in str(p) and message in str(p) for p in refused.value.problems), refused.value.problems
