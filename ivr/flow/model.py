"""The menu tree as the engine runs it: immutable, shared by every session.

Nodes are built once by the loader from validated YAML; sessions only read
them, so a tree can serve thousands of concurrent calls without copies. Node
references are kept as ids (strings) and resolved through ``Tree.nodes``; the
validator guarantees every id exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ivr.config.templates import Expression, TextTemplate, ValueTemplate
from ivr.flow.actions import Collect, Play
from ivr.flow.prompts import Prompt

# Named defaults, documented in docs/menus.md.
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_INTERDIGIT_TIMEOUT_S = 3.0
DEFAULT_END_OF_SPEECH_S = 0.8
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_TERMINATOR = "#"
DEFAULT_MIN_CONFIDENCE = 0.5
DEFAULT_PRIORITY = 0
DEFAULT_HANGUP_REASON = "completed"
MAX_HISTORY = 32

VALID_KEYS = "0123456789*#"
CHANNELS = ("voice", "ussd", "sms")
TEXT_CHANNELS = frozenset({"ussd", "sms"})


@dataclass(frozen=True, slots=True, kw_only=True)
class InputPolicy:
    """How a node that waits for input handles silence and wrong input (VoiceXML count semantics)."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    interdigit_timeout_s: float = DEFAULT_INTERDIGIT_TIMEOUT_S
    # Spoken input: this much silence after speech ends the utterance (voice calls with speech only)
    end_of_speech_s: float = DEFAULT_END_OF_SPEECH_S
    noinput: tuple[Prompt, ...] = ()
    nomatch: tuple[Prompt, ...] = ()
    max_noinput: int = DEFAULT_MAX_ATTEMPTS
    max_nomatch: int = DEFAULT_MAX_ATTEMPTS
    on_noinput_exhausted: str = ""
    on_nomatch_exhausted: str = ""
    reprompt: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Option:
    """One menu choice. ``keywords`` are normalised (see engine.normalise_speech)."""

    index: int
    key: str
    goto: str
    label: Mapping[str, str]
    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    when: Expression | None = None
    prompt: Prompt | None = None
    #: Options are offered highest rank first, per caller (a CRM score); equal ranks keep file order
    rank: Expression | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """What every node has: an id, an optional condition and where to go when it is false."""

    kind: ClassVar[str] = ""
    id: str
    when: Expression | None = None
    else_: str | None = None
    topic: str | None = None  # what a caller reaching it came about, for the report (roaming, billing)


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuNode(Node):
    kind: ClassVar[str] = "menu"
    prompt: Prompt
    title: Prompt | None = None
    options: tuple[Option, ...]
    input: InputPolicy
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    conditional: bool = False  # some option has `when` or `rank`: what is offered is decided per call
    ranked: bool = False  # some option has `rank`: the order is decided per call
    # Built Collect actions per (language, visible option indexes in order, page); filled lazily,
    # shared by all sessions because a Collect is immutable.
    collect_cache: dict[Any, Collect] = field(default_factory=dict, compare=False, repr=False)
    # Likewise the voice Plays (menu prompt + visible option prompts) when all are static text.
    plays_cache: dict[Any, tuple[Play, ...]] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SayNode(Node):
    kind: ClassVar[str] = "say"
    prompt: Prompt
    next: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectNode(Node):
    kind: ClassVar[str] = "collect"
    prompt: Prompt
    input: InputPolicy
    min_digits: int
    max_digits: int
    terminator: str
    pattern: re.Pattern[str] | None
    masked: bool
    store_as: str
    next: str
    collect: Collect


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionNode(Node):
    kind: ClassVar[str] = "action"
    name: str
    args: tuple[tuple[str, ValueTemplate], ...]
    masked_args: frozenset[str]
    confirm: Prompt | None
    input: InputPolicy
    on_success: str
    on_failure: str
    on_cancel: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferNode(Node):
    """An offer read out to this caller (from CRM data), answered yes or no; the answer is journaled.

    ``offer`` names the offer (its CRM code) for the conversion report; no answer after the
    input policy's attempts is "ignored" and goes to ``on_ignore``.
    """

    kind: ClassVar[str] = "offer"
    offer: ValueTemplate
    prompt: Prompt
    input: InputPolicy
    on_accept: str
    on_decline: str
    on_ignore: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteNode(Node):
    kind: ClassVar[str] = "route"
    queue: str
    priority: int
    reason: TextTemplate
    prompt: Prompt | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GotoNode(Node):
    kind: ClassVar[str] = "goto"
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BackNode(Node):
    kind: ClassVar[str] = "back"


@dataclass(frozen=True, slots=True, kw_only=True)
class RepeatNode(Node):
    kind: ClassVar[str] = "repeat"


@dataclass(frozen=True, slots=True, kw_only=True)
class HangupNode(Node):
    kind: ClassVar[str] = "hangup"
    prompt: Prompt | None = None
    reason: str = DEFAULT_HANGUP_REASON


NODE_TYPES: dict[str, type[Node]] = {
    cls.kind: cls
    for cls in (MenuNode, SayNode, CollectNode, ActionNode, OfferNode, RouteNode, GotoNode, BackNode, RepeatNode,
                HangupNode)
}


@dataclass(frozen=True, slots=True)
class Tree:
    """A validated menu tree, built by :func:`ivr.flow.loader.load_tree`."""

    version: str
    languages: tuple[str, ...]
    nodes: Mapping[str, Node]
    entry: str | None = None
    fallback: str | None = None
    numbers: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    #: dnis -> the voice driver that answers it ("ari"); numbers not listed use FastAGI
    drivers: Mapping[str, str] = field(default_factory=dict)

    @property
    def fallback_language(self) -> str:
        return self.languages[0]

    def entry_for(self, dnis: str | None) -> str | None:
        """The node a call to ``dnis`` starts at: numbers.yaml first, then the tree's ``entry``."""
        if dnis is not None:
            node = self.numbers.get(dnis)
            if node is not None:
                return node
        return self.entry
