"""Recorded answers of declared actions, so ``ivr simulate`` walks a tree without the back end.

An admin who adds "order status" to a menu wants to hear both branches before the order
system's owners open a test endpoint. A fixture file lists, per action, answers in order;
the first whose ``args`` all equal the call's arguments answers (no ``args``: any call):

.. code-block:: yaml

    order_status:
      - args: {order: "12345"}
        ok: true
        result: {status: shipped, eta: "2026-12-08"}
      - ok: false
        result: {error: "No order with that number", reason: refused}

Actions the file does not name go to the demo runner (balance, services, callback).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ivr.config.problems import Problem, ProblemsFound, did_you_mean, type_name
from ivr.config.reader import ConfigReader
from ivr.config.source import YList, YMap, read_yaml_mapping
from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult
from ivr.tools.simulate import ActionRunner, DemoActionRunner

ANSWER_FIELDS = ("args", "ok", "result")


@dataclass(frozen=True)
class RecordedAnswer:
    args: Mapping[str, str]  # empty: answers any call
    ok: bool
    result: Mapping[str, Any]

    def matches(self, args: Mapping[str, Any]) -> bool:
        return all(str(args.get(name, "")) == value for name, value in self.args.items())


class FixturesInvalid(ProblemsFound):
    error_id = "fixtures-invalid"

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        super().__init__(path, problems, hint="see docs/integrations.md, 'Trying a tree without the back end'")


class FixtureRunner:
    """An :class:`~ivr.tools.simulate.ActionRunner` that answers from recorded fixtures first."""

    def __init__(self, answers: Mapping[str, tuple[RecordedAnswer, ...]],
                 inner: ActionRunner | None = None) -> None:
        self.answers = answers
        self.inner = inner or DemoActionRunner()

    def run(self, name: str, args: Mapping[str, Any], context: CallerContext) -> ActionResult:
        recorded = self.answers.get(name)
        if recorded is None:
            return self.inner.run(name, args, context)
        for answer in recorded:
            if answer.matches(args):
                return ActionResult(name, answer.ok, answer.result)
        return ActionResult(name, False, {"error": f"no recorded answer of {name} for these arguments",
                                          "reason": "unavailable"})


def load_fixtures(path: Path, known: Collection[str]) -> FixtureRunner:
    """The fixture file at ``path``; :class:`FixturesInvalid` lists every problem with file:line."""
    problems: list[Problem] = []
    data = read_yaml_mapping(path, problems)
    answers: dict[str, tuple[RecordedAnswer, ...]] = {}
    if data is not None:
        reader = ConfigReader(problems)
        for name, items in data.items():
            if name not in known:
                reader.problem(data.key_loc(name), f"unknown action '{name}'{did_you_mean(str(name), known)}")
                continue
            if not isinstance(items, YList):
                reader.problem(data.value_loc(name), f"'{name}' must list answers, got {type_name(items)}")
                continue
            answers[str(name)] = tuple(a for i, item in enumerate(items)
                                       if (a := _answer(reader, item, items.item_loc(i), str(name))) is not None)
    if problems:
        raise FixturesInvalid(path, sorted(set(problems)))
    return FixtureRunner(MappingProxyType(answers))


def _answer(reader: ConfigReader, item: Any, loc: Any, name: str) -> RecordedAnswer | None:
    if not isinstance(item, YMap):
        reader.problem(loc, f"an answer of '{name}' must be a mapping with ok and result")
        return None
    reader.fields(item, ANSWER_FIELDS, ("ok",), f"an answer of '{name}'")
    ok, args, result = item.get("ok"), item.get("args") or {}, item.get("result") or {}
    if not isinstance(ok, bool):
        reader.problem(item.value_loc("ok"), "'ok' must be true or false")
        return None
    if not isinstance(args, dict) or not isinstance(result, dict):
        reader.problem(item.loc, f"an answer of '{name}': args and result must be mappings")
        return None
    return RecordedAnswer(MappingProxyType({str(k): str(v) for k, v in args.items()}), ok,
                          MappingProxyType(dict(result)))
