"""Draw a menu tree for review: Mermaid for docs and merge requests, DOT for Graphviz.

A tree spread over several YAML files is hard to review as text: which menu
leads where, what an exhausted retry does, which option only some callers see.
A drawing answers that at a glance. Both formats come from one list of boxes
and arrows (:func:`_graph`), so they cannot disagree; only quoting differs.
Labels carry text from the menu files, which may hold any character, so every
label is escaped for its format and a prompt can never break the drawing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.config.templates import TextTemplate
from ivr.flow.actions import Sound
from ivr.flow.model import (
    ActionNode,
    BackNode,
    CollectNode,
    GotoNode,
    HangupNode,
    MenuNode,
    Node,
    OfferNode,
    RepeatNode,
    RouteNode,
    SayNode,
    Tree,
)
from ivr.flow.prompts import Prompt, TypedTemplate

#: Summaries and conditions are cut to this many characters: a box is a reminder, not the prompt.
SUMMARY_CHARS = 40
CONDITION_CHARS = 40
START_MARK = "☎"


@dataclass(frozen=True, slots=True)
class Box:
    """One drawn node: a tree node or an entry point. ``lines`` are plain text, escaped per format."""

    key: str
    lines: tuple[str, ...]
    shape: str  # "menu", "input", "step", "end", "start"


@dataclass(frozen=True, slots=True)
class Arrow:
    """Arrows between the same two boxes are merged into one, labels joined: fewer crossing lines."""

    source: str
    target: str
    label: str


@dataclass(frozen=True, slots=True)
class Graph:
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]


def to_mermaid(tree: Tree, language: str | None = None) -> str:
    """The tree as a Mermaid ``flowchart TD``; prompt text in ``language`` (default: the fallback language)."""
    graph = _graph(tree, language)
    ids = _short_ids(graph)
    shapes = {
        "menu": ('{{"', '"}}'),
        "input": ('[/"', '"/]'),
        "step": ('["', '"]'),
        "end": ('(["', '"])'),
        "start": ('(("', '"))'),
    }
    lines = ["flowchart TD"]
    for box in graph.boxes:
        left, right = shapes[box.shape]
        label = "<br/>".join(_mermaid_escape(line) for line in box.lines)
        lines.append(f"    {ids[box.key]}{left}{label}{right}")
    for arrow in graph.arrows:
        link = f'-->|"{_mermaid_escape(arrow.label)}"|' if arrow.label else "-->"
        lines.append(f"    {ids[arrow.source]} {link} {ids[arrow.target]}")
    # Class names must not be Mermaid keywords ("end" closes a subgraph).
    classes = {"start": "entryPoint", "menu": "menuNode", "end": "callEnds"}
    for shape, name in classes.items():
        members = [ids[b.key] for b in graph.boxes if b.shape == shape]
        if members:
            lines.append(f"    class {','.join(members)} {name}")
    lines.append("    classDef entryPoint fill:#e8f4e8,stroke:#2e7d32")
    lines.append("    classDef menuNode fill:#e8eef8,stroke:#1f4e8c")
    lines.append("    classDef callEnds fill:#f8ece8,stroke:#8c3a1f")
    return "\n".join(lines) + "\n"


def to_dot(tree: Tree, language: str | None = None) -> str:
    """The same graph in Graphviz DOT, for ``dot -Tsvg``; every string is quoted and escaped."""
    graph = _graph(tree, language)
    shapes = {
        "menu": 'shape=box, style="rounded,filled", fillcolor="#e8eef8"',
        "input": "shape=parallelogram",
        "step": "shape=box",
        "end": 'shape=box, style="rounded,filled", fillcolor="#f8ece8"',
        "start": 'shape=oval, style=filled, fillcolor="#e8f4e8"',
    }
    lines = [
        f"digraph {_dot_quote('ivr ' + tree.version)} {{",
        "    rankdir=TB;",
        '    node [fontname="Helvetica", fontsize=10];',
        '    edge [fontname="Helvetica", fontsize=9];',
    ]
    for box in graph.boxes:
        label = "\\n".join(_dot_escape(line) for line in box.lines)
        lines.append(f'    {_dot_quote(box.key)} [label="{label}", {shapes[box.shape]}];')
    for arrow in graph.arrows:
        attrs = f" [label={_dot_quote(arrow.label)}]" if arrow.label else ""
        lines.append(f"    {_dot_quote(arrow.source)} -> {_dot_quote(arrow.target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- the graph both formats draw ----------------------------------------------------------


def _graph(tree: Tree, language: str | None) -> Graph:
    lang = language if language in tree.languages else tree.fallback_language
    boxes: list[Box] = []
    edges: dict[tuple[str, str], list[str]] = {}

    def link(source: str, target: str | None, label: str) -> None:
        if target is None:
            return
        labels = edges.setdefault((source, target), [])
        if label not in labels:
            labels.append(label)

    # Entry points first so a reader starts at the top: numbers.yaml, then the tree's own entry.
    for dnis, target in tree.numbers.items():
        key = f"{START_MARK} {dnis}"
        boxes.append(Box(key, (key,), "start"))
        link(key, target, "")
    if tree.entry is not None:
        key = f"{START_MARK} any other number"
        boxes.append(Box(key, (key,), "start"))
        link(key, tree.entry, "")

    for node in tree.nodes.values():
        boxes.append(Box(node.id, _node_lines(tree, node, lang), _shape(node)))
        for label, to in node_edges(node):
            link(node.id, to, label)
    arrows = tuple(Arrow(s, t, ", ".join(labels)) for (s, t), labels in edges.items())
    return Graph(tuple(boxes), arrows)


def _shape(node: Node) -> str:
    if isinstance(node, MenuNode):
        return "menu"
    if isinstance(node, (CollectNode, OfferNode)) or (isinstance(node, ActionNode) and node.confirm is not None):
        return "input"
    if isinstance(node, (RouteNode, HangupNode)):
        return "end"
    return "step"


def _node_lines(tree: Tree, node: Node, lang: str) -> tuple[str, ...]:
    lines = [node.id]
    summary = _summary(node, lang)
    lines.append(f"{node.kind}: {summary}" if summary else node.kind)
    if node.when is not None:
        lines.append("when: " + shorten(node.when.source, CONDITION_CHARS))
    if node.id == tree.fallback:
        lines.append("(tree fallback)")
    return tuple(lines)


def _summary(node: Node, lang: str) -> str:
    if isinstance(node, MenuNode):
        return shorten(prompt_source(node.title or node.prompt, lang), SUMMARY_CHARS)
    if isinstance(node, SayNode):
        return shorten(prompt_source(node.prompt, lang), SUMMARY_CHARS)
    if isinstance(node, CollectNode):
        size = str(node.max_digits) if node.min_digits == node.max_digits else f"{node.min_digits}-{node.max_digits}"
        masked = ", masked" if node.masked else ""
        return f"{size} digits -> vars.{node.store_as}{masked}"
    if isinstance(node, ActionNode):
        return node.name + (" (confirm)" if node.confirm is not None else "")
    if isinstance(node, OfferNode):
        return "offer " + shorten(str(node.offer.source), SUMMARY_CHARS)
    if isinstance(node, RouteNode):
        return f"queue {node.queue}, priority {node.priority}"
    if isinstance(node, HangupNode):
        return node.reason
    if isinstance(node, BackNode):
        return "previous menu"
    if isinstance(node, RepeatNode):
        return "current menu"
    return ""


def node_edges(node: Node) -> list[tuple[str, str | None]]:
    """(label, target) of every static way out of ``node``; ``back``/``repeat`` go where the call came from.

    Labels are option keys (with their condition) or field names; ivr.tools.diff reads the field names.
    """
    out: list[tuple[str, str | None]] = []
    if isinstance(node, MenuNode):
        for option in node.options:
            label = option.key
            if option.when is not None:
                label += " when: " + shorten(option.when.source, CONDITION_CHARS)
            out.append((label, option.goto))
    if isinstance(node, (SayNode, CollectNode)):
        out.append(("next", node.next))
    if isinstance(node, GotoNode):
        out.append(("goto", node.target))
    if isinstance(node, ActionNode):
        out.append(("on_success", node.on_success))
        out.append(("on_failure", node.on_failure))
        out.append(("on_cancel", node.on_cancel))
    if isinstance(node, OfferNode):
        out.extend((("on_accept", node.on_accept), ("on_decline", node.on_decline), ("on_ignore", node.on_ignore)))
    # An action without `confirm` never waits for the caller, so its input policy never applies.
    if isinstance(node, (MenuNode, CollectNode)) or (isinstance(node, ActionNode) and node.confirm is not None):
        out.append(("on_noinput_exhausted", node.input.on_noinput_exhausted or None))
        out.append(("on_nomatch_exhausted", node.input.on_nomatch_exhausted or None))
    if node.when is not None:
        out.append(("else", node.else_))
    return out


# -- text helpers (also used by ivr.tools.diff) --------------------------------------------


def prompt_source(prompt: Prompt, language: str) -> str:
    """A prompt as written for ``language`` (templates as their source): what an author recognises."""
    parts = prompt.parts.get(language)
    if parts is None:
        parts = next(iter(prompt.parts.values()), ())
    words: list[str] = []
    for part in parts:
        if isinstance(part, TextTemplate):
            words.append(part.source.strip())
        elif isinstance(part, Sound):
            words.append(f"[sound:{part.name}]")
        elif isinstance(part, TypedTemplate):
            words.append(f"[{part.kind}]")  # the value's template is too long for a box
    return " ".join(w for w in words if w)


def shorten(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters, cut at a word when possible, marked with "…"."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


_MERMAID_SPECIAL = frozenset('"#&<>|[](){};`\\')


def _mermaid_escape(text: str) -> str:
    """Mermaid entity codes (``#34;``) for every character its parser or HTML labels treat specially."""
    flat = " ".join(text.split())  # a newline inside a label would end the statement
    return "".join(f"#{ord(c)};" if c in _MERMAID_SPECIAL else c for c in flat)


def _short_ids(graph: Graph) -> dict[str, str]:
    """Mermaid ids must be plain words; node ids such as ``number:0611`` are not, so number the boxes."""
    starts = [b.key for b in graph.boxes if b.shape == "start"]
    others = [b.key for b in graph.boxes if b.shape != "start"]
    ids = {key: f"start{i}" for i, key in enumerate(starts)}
    ids.update({key: f"n{i}" for i, key in enumerate(others)})
    return ids


def _dot_escape(text: str) -> str:
    """Inside a DOT double-quoted string: backslash and quote escaped, line breaks flattened."""
    flat = " ".join(text.split())
    return flat.replace("\\", "\\\\").replace('"', '\\"')


def _dot_quote(text: str) -> str:
    return f'"{_dot_escape(text)}"'
