"""The one config reader: every mistake is a problem at its line and column, and reading goes on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from ivr.config.problems import Problem
from ivr.config.reader import ConfigReader, FieldRule, Number, Text, Whole
from ivr.config.source import YMap, parse_yaml


@dataclass(frozen=True)
class Limits:
    burst: int = 5
    per_minute: float = 60.0
    header: str = "X-Sig"


RULES: Mapping[str, FieldRule] = {"burst": Whole(0, 100), "per_minute": Number(0.1, 1000), "header": Text()}


def read(text: str) -> tuple[Limits, list[str]]:
    problems: list[Problem] = []
    data = parse_yaml(text, "t.yaml", problems)
    assert isinstance(data, YMap)
    section = data.get("limits")
    limits = ConfigReader(problems).record(section, Limits(), RULES, "'limits'")
    return limits, [str(p) for p in problems]


def test_an_absent_section_is_the_dataclass_defaults() -> None:
    assert read("other: 1\n") == (Limits(), [])


def test_the_fields_given_replace_the_defaults() -> None:
    assert read("limits:\n  burst: 7\n  per_minute: 2.5\n") == (Limits(7, 2.5), [])


@pytest.mark.parametrize(("yaml_text", "problem"), [
    ("limits:\n  burst: 500\n", "t.yaml:2:10: 'burst' must be from 0 to 100, got 500"),
    ("limits:\n  burst: many\n", "t.yaml:2:10: 'burst' must be a whole number, got string"),
    ("limits:\n  per_minute: 0\n", "t.yaml:2:15: 'per_minute' must be from 0.1 to 1000, got 0"),
    ("limits:\n  header: 611\n", "t.yaml:2:11: 'header' must be quoted text (YAML read 611 as a number)"),
    ("limits:\n  brust: 1\n", "t.yaml:2:3: unknown field 'brust' in 'limits'; did you mean 'burst'?"),
])
def test_a_wrong_value_is_a_located_problem_and_the_default_stays(yaml_text: str, problem: str) -> None:
    limits, problems = read(yaml_text)
    assert problems == [problem]
    assert limits == Limits()


def test_every_problem_of_a_section_is_reported_in_one_pass() -> None:
    _, problems = read("limits:\n  burst: -1\n  per_minute: x\n  extra: 1\n")
    assert len(problems) == 3


def test_a_secret_from_the_environment_wins_over_the_file() -> None:
    problems: list[Problem] = []
    data = parse_yaml("password: from-file\n", "t.yaml", problems)
    assert isinstance(data, YMap)
    assert ConfigReader(problems, {"IVR_X": "from-env"}).secret(data, "password", "IVR_X") == "from-env"
    assert ConfigReader(problems, {}).secret(data, "password", "IVR_X") == "from-file"
