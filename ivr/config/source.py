"""Read YAML into plain values that remember where they came from.

PyYAML's ``compose`` keeps a mark on every node; we turn the node graph into
dicts and lists (subclasses carrying locations) so the loader can work with
ordinary values and still point at the exact line and column of a mistake.
Reading never raises on bad input: every failure becomes a :class:`Problem`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ivr.config.problems import Loc, Problem, type_name

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YMap(dict[Any, Any]):
    """A YAML mapping: a dict plus the location of itself, each key and each value."""

    __slots__ = ("loc", "key_locs", "value_locs", "raw_keys")

    def __init__(self, loc: Loc) -> None:
        super().__init__()
        self.loc = loc
        self.key_locs: dict[Any, Loc] = {}
        self.value_locs: dict[Any, Loc] = {}
        # The source text of keys that YAML read as something other than a string
        # (``0611:`` is the octal integer 393 in YAML 1.1): messages quote what was written.
        self.raw_keys: dict[Any, str] = {}

    def key_loc(self, key: Any) -> Loc:
        return self.key_locs.get(key, self.loc)

    def value_loc(self, key: Any) -> Loc:
        return self.value_locs.get(key, self.loc)


class YList(list[Any]):
    """A YAML sequence: a list plus the location of itself and of each item."""

    __slots__ = ("loc", "item_locs")

    def __init__(self, loc: Loc) -> None:
        super().__init__()
        self.loc = loc
        self.item_locs: list[Loc] = []

    def item_loc(self, index: int) -> Loc:
        return self.item_locs[index] if 0 <= index < len(self.item_locs) else self.loc


def loc_of(node: Node, path: str) -> Loc:
    mark = node.start_mark
    return Loc(path, mark.line + 1, mark.column + 1)


def read_yaml(path: Path | str, problems: list[Problem]) -> Any:
    """The located value of one YAML file, or None after recording why it could not be read."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        problems.append(Problem(name, 1, 1, f"cannot read file: {exc.strerror or exc}"))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, 1, 1, f"file is not valid UTF-8 (byte {exc.start})"))
        return None
    return parse_yaml(text, name, problems)


def parse_yaml(text: str, name: str, problems: list[Problem]) -> Any:
    """Like :func:`read_yaml` for text already in memory (tests, editors)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark is not None:
            where = exc.context_mark
            what += f" ({exc.context} at line {where.line + 1}, column {where.column + 1})"
        problems.append(Problem(name, line, col, f"YAML syntax error: {what}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(name, 1, 1, f"YAML syntax error: {exc}"))
        return None
    except RecursionError:
        problems.append(Problem(name, 1, 1, "file is nested too deeply"))
        return None
    if node is None:
        problems.append(Problem(name, 1, 1, "file is empty"))
        return None
    try:
        return _Converter(name, problems).convert(node)
    except RecursionError:
        problems.append(Problem(name, 1, 1, "file is nested too deeply"))
        return None


class _Converter:
    """Turns a composed node graph into YMap/YList/scalars, once per node."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        self.scalars = SafeConstructor()
        self.done: dict[int, Any] = {}  # aliases share one value: no billion laughs
        self.active: set[int] = set()

    def convert(self, node: Node) -> Any:
        key = id(node)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            self.problems.append(Problem.at(loc_of(node, self.path), "recursive YAML alias"))
            return None
        self.active.add(key)
        try:
            value = self._convert(node)
        finally:
            self.active.discard(key)
        self.done[key] = value
        return value

    def _convert(self, node: Node) -> Any:
        if isinstance(node, ScalarNode):
            try:
                return self.scalars.construct_object(node, deep=True)
            except Exception:  # a malformed timestamp or binary: keep the text as written
                return node.value
        if isinstance(node, SequenceNode):
            seq = YList(loc_of(node, self.path))
            for item in node.value:
                seq.append(self.convert(item))
                seq.item_locs.append(loc_of(item, self.path))
            return seq
        if isinstance(node, MappingNode):
            return self._mapping(node)
        return None

    def _mapping(self, node: MappingNode) -> YMap:
        out = YMap(loc_of(node, self.path))
        merged: list[YMap] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node))
                continue
            key_loc = loc_of(key_node, self.path)
            if not isinstance(key_node, ScalarNode):
                self.problems.append(Problem.at(key_loc, "mapping keys must be plain values"))
                continue
            key = self.convert(key_node)
            if isinstance(key, (list, dict)) or not _hashable(key):
                self.problems.append(Problem.at(key_loc, "mapping keys must be plain values"))
                continue
            if key in out:
                first = out.key_loc(key)
                self.problems.append(
                    Problem.at(key_loc, f"duplicate key '{key_node.value}' (first at line {first.line})")
                )
                continue
            out[key] = self.convert(value_node)
            out.key_locs[key] = key_loc
            out.value_locs[key] = loc_of(value_node, self.path)
            if not isinstance(key, str):
                out.raw_keys[key] = str(key_node.value)
        for source in merged:  # explicit keys win over merged ones, as YAML says
            for key, value in source.items():
                if key not in out:
                    out[key] = value
                    out.key_locs[key] = source.key_loc(key)
                    out.value_locs[key] = source.value_loc(key)
                    if key in source.raw_keys:
                        out.raw_keys[key] = source.raw_keys[key]
        return out

    def _merge_sources(self, node: Node) -> list[YMap]:
        value = self.convert(node)
        if isinstance(value, YMap):
            return [value]
        if isinstance(value, YList) and all(isinstance(v, YMap) for v in value):
            return list(value)
        self.problems.append(Problem.at(loc_of(node, self.path), f"'<<' must merge a mapping, not {type_name(value)}"))
        return []


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def read_yaml_mapping(path: Path | str, problems: list[Problem]) -> YMap | None:
    """A config file whose top level must be a mapping (routing, USSD, SMS settings)."""
    data = read_yaml(path, problems)
    if data is None:
        return None
    if not isinstance(data, YMap):
        problems.append(Problem(str(path), 1, 1, f"the top level must be a mapping, not {type_name(data)}"))
        return None
    return data
