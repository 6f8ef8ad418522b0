"""The journey event registry is the one vocabulary: every writer and reader uses its names.

Read from the source (the AST), so a module that writes or matches an event name the
registry does not hold fails here before any agent misses a step.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.journey import events as E

PACKAGE = Path(__file__).resolve().parents[3] / "ivr"
REGISTRY_MODULES = {PACKAGE / "journey" / "events.py", PACKAGE / "flow" / "journey.py"}
#: Calls that build a journey event, and where their kind goes (position, keyword).
EVENT_BUILDERS = {"StampedEvent": (3, "type"), "JourneyEvent": (0, "type")}
#: Attributes that hold an event's kind when a reader matches on it.
KIND_ATTRIBUTES = {"type"}


def modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"


def literals(node: ast.AST) -> list[str]:
    """The string constants of ``node``: itself, or the items of a literal set, tuple or list."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Set, ast.Tuple, ast.List)):
        return [s for item in node.elts for s in literals(item)]
    return []


def kind_argument(call: ast.Call) -> ast.AST | None:
    name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
    if name not in EVENT_BUILDERS:
        return None
    position, keyword = EVENT_BUILDERS[name]
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[position] if len(call.args) > position else None


def is_kind_attribute(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in KIND_ATTRIBUTES


def test_no_module_but_the_registry_defines_an_event_name() -> None:
    twins = [f"{where(path, node)}: {node.targets[0].id} = {node.value.value!r}"
             for path, tree in modules() if path not in REGISTRY_MODULES
             for node in tree.body
             if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
             and isinstance(node.value, ast.Constant) and node.value.value in E.REGISTRY
             and node.targets[0].id == str(node.value.value).upper()]
    assert twins == [], "import these from ivr.journey.events instead"


def test_every_event_written_names_its_kind_through_the_registry() -> None:
    spelled = [f"{where(path, call)}: {text!r}" for path, tree in modules()
               for call in ast.walk(tree) if isinstance(call, ast.Call)
               for text in literals(kind_argument(call) or ast.Pass())]
    assert spelled == [], "write events with the registry's constants, not a literal"


def test_every_event_name_a_reader_matches_is_registered() -> None:
    unknown = []
    for path, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and (is_kind_attribute(node.left)
                                                  or any(map(is_kind_attribute, node.comparators))):
                for side in (node.left, *node.comparators):
                    unknown += [f"{where(path, node)}: {t!r}" for t in literals(side) if t not in E.REGISTRY]
    assert unknown == []


def test_every_name_taken_from_the_registry_exists() -> None:
    missing = []
    for path, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "ivr.journey.events":
                missing += [f"{where(path, node)}: {a.name}" for a in node.names if not hasattr(E, a.name)]
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "E"
                    and node.attr.isupper() and not hasattr(E, node.attr)):
                missing.append(f"{where(path, node)}: E.{node.attr}")
    assert missing == []


def test_every_registered_kind_is_used_by_some_module() -> None:
    """A kind nobody writes is a stale declaration: the registry lists what really happens."""
    constants = {name for name in dir(E) if name.isupper() and isinstance(getattr(E, name), str)
                 and getattr(E, name) in E.REGISTRY}
    used: set[str] = set()
    for path, tree in modules():
        if path in REGISTRY_MODULES:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in constants:
                used.add(node.attr)
            elif isinstance(node, ast.Name) and node.id in constants:
                used.add(node.id)
            elif isinstance(node, ast.ImportFrom) and node.module == "ivr.journey.events":
                used.update(a.name for a in node.names)
    assert sorted(constants - used) == []


KINDS = [E.REGISTRY[name] for name in sorted(E.REGISTRY)]


@pytest.mark.parametrize("kind", KINDS, ids=[kind.name for kind in KINDS])
def test_every_kind_says_who_emits_it_and_what_it_holds(kind: E.EventKind) -> None:
    assert kind.channels and kind.channels <= {*E.CHANNELS, *E.EXTERNAL_CHANNELS, E.STAFF}
    assert kind.meaning and all(isinstance(f, str) and f for f in kind.fields)


def test_an_unknown_name_is_a_typed_error_that_says_where_to_declare_it() -> None:
    with pytest.raises(E.UnknownEventKind, match="ivr/journey/events.py"):
        E.kind("node_entred")


def test_the_engines_kinds_are_all_declared() -> None:
    from ivr.flow import journey as engine

    assert engine.EVENT_TYPES <= E.names()
