"""What a new menu tree changes for each kind of caller, before it is published.

A reviewer reading a YAML diff sees lines, not callers: that a ``when:`` now
hides an option from everyone but VIPs, or that a renamed queue strands every
debtor who presses 0, is invisible until calls go wrong. Here each caller
profile (``config/callers.yaml``) walks both trees through the real engine,
trying every choice it could make, and the two walks are compared: what the
caller would hear, which options they would see, where their call could end.

Exploration re-runs a fresh :class:`Session` from the start for every key path:
sessions are cheap and deterministic, so a path is a complete recipe for a
state, and each reported change comes with the keys that reproduce it in
``ivr simulate``. Paths grow breadth first, so the path kept is a shortest one,
and states already seen are not expanded again, which keeps the walk bounded.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ivr.config.errors import TemplateFailed
from ivr.config.problems import Loc, Problem, did_you_mean, type_name
from ivr.config.source import YMap, read_yaml
from ivr.config.templates import TextTemplate
from ivr.flow.actions import Action, Collect, MenuChoice, Play, RunAction
from ivr.flow.context import CallerContext
from ivr.flow.engine import Session
from ivr.flow.errors import FlowError
from ivr.flow.events import ActionResult, Digits, Event, Started, Timeout
from ivr.flow.model import (
    CHANNELS,
    VALID_KEYS,
    ActionNode,
    BackNode,
    CollectNode,
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
from ivr.flow.render_text import format_parts
from ivr.tools.graph import node_edges as _node_edges
from ivr.tools.simulate import ActionRunner, DemoActionRunner

#: Default bounds: eight caller inputs reach every menu of a realistic tree several
#: times over; 2000 distinct states is far above what the demo tree needs.
DEFAULT_MAX_DEPTH = 8
DEFAULT_MAX_STATES = 2000

PROFILE_FIELDS = ("description", "dnis", "channel", "customer", "caller", "now")
CONTEXT_FIELDS = ("customer", "caller", "now")

#: Steps the caller takes (they count towards ``max_depth``); action results do not.
KEY, DIGITS, TIMEOUT, OK, FAIL = "key", "digits", "timeout", "ok", "fail"
_INPUT_KINDS = frozenset({KEY, DIGITS, TIMEOUT})


# -- caller profiles ---------------------------------------------------------------------


class ProfilesInvalid(FlowError):
    """The caller profiles file cannot be used; ``problems`` say where and why."""

    error_id = "caller-profiles-invalid"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        shown = "\n".join(str(p) for p in self.problems)
        super().__init__(f"caller profiles have {len(self.problems)} problem(s):\n{shown}")


@dataclass(frozen=True, slots=True)
class CallerProfile:
    """A kind of caller: the template context the host would build for them, and how they call.

    ``context`` has the keys of :class:`CallerContext` (``customer``, ``caller``, ``now``);
    the session language comes from ``customer.language`` as it does in a live call.
    """

    name: str
    context: Mapping[str, Any]
    dnis: str | None = None
    channel: str = "voice"

    def caller_context(self) -> CallerContext:
        return CallerContext.coerce({**self.context, "dnis": self.dnis})


def load_profiles(path: str | Path) -> list[CallerProfile]:
    """The profiles of a callers file (see ``config/callers.yaml``), in file order.

    Raises :class:`ProfilesInvalid` with every problem found, each naming the file and line.
    """
    problems: list[Problem] = []
    data = read_yaml(path, problems)
    profiles: list[CallerProfile] = []
    if data is not None:
        profiles = _profiles(data, str(path), problems)
    if problems:
        raise ProfilesInvalid(sorted(problems))
    return profiles


def _profiles(data: Any, path: str, problems: list[Problem]) -> list[CallerProfile]:
    top = Loc(path)
    if not isinstance(data, YMap):
        problems.append(Problem.at(top, f"the top level must be a mapping, not {type_name(data)}"))
        return []
    for key in data:
        if key != "profiles":
            problems.append(Problem.at(data.key_loc(key), f"unknown top-level key '{key}'; expected 'profiles'"))
    entries = data.get("profiles")
    if not isinstance(entries, YMap) or not entries:
        shown = "empty" if isinstance(entries, YMap) else type_name(entries)
        problems.append(Problem.at(data.value_loc("profiles"), f"'profiles' must be a non-empty mapping, not {shown}"))
        return []
    out: list[CallerProfile] = []
    for name, body in entries.items():
        where = entries.key_loc(name)
        if not isinstance(name, str):
            problems.append(Problem.at(where, f"profile name {entries.raw_keys.get(name, name)!s} must be a string"))
            continue
        if not isinstance(body, YMap):
            problems.append(Problem.at(where, f"profile '{name}' must be a mapping, not {type_name(body)}"))
            continue
        profile = _profile(name, body, problems)
        if profile is not None:
            out.append(profile)
    return out


def _profile(name: str, body: YMap, problems: list[Problem]) -> CallerProfile | None:
    what = f"profile '{name}'"
    before = len(problems)
    for key in body:
        if key not in PROFILE_FIELDS:
            hint = did_you_mean(str(key), PROFILE_FIELDS) or f"; expected one of {', '.join(PROFILE_FIELDS)}"
            problems.append(Problem.at(body.key_loc(key), f"unknown field '{key}' in {what}{hint}"))
    dnis = body.get("dnis")
    if dnis is not None and not isinstance(dnis, str):
        raw = body.value_loc("dnis")
        problems.append(
            Problem.at(raw, f"'dnis' in {what} must be a quoted string such as \"100\", not {type_name(dnis)}")
        )
    channel = body.get("channel", "voice")
    if channel not in CHANNELS:
        problems.append(
            Problem.at(
                body.value_loc("channel"), f"'channel' in {what} must be one of {', '.join(CHANNELS)}, not {channel!r}"
            )
        )
    context: dict[str, Any] = {}
    for key in CONTEXT_FIELDS:
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            problems.append(
                Problem.at(body.value_loc(key), f"'{key}' in {what} must be a mapping, not {type_name(value)}")
            )
            continue
        context[key] = _plain(value)
    if len(problems) > before:
        return None
    return CallerProfile(name, context, dnis, channel)


def _plain(value: Any) -> Any:
    """Plain dicts and lists; YAML floats become Decimals, as money from a CRM would be."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


# -- exploration ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One answer the explorer gives a waiting session: a key, digits, a timeout, an action result."""

    kind: str
    value: str = ""

    def __str__(self) -> str:
        if self.kind == TIMEOUT:
            return "T"  # what `ivr simulate` reads as a timeout
        if self.kind == FAIL:
            return f"[{self.value} fails]"
        if self.kind == OK:
            return f"[{self.value} ok]"
        return self.value


KeyPath = tuple[Step, ...]


def format_path(path: Iterable[Step]) -> str:
    """``keys 3,1`` — the inputs to give ``ivr simulate``; successful actions happen on their own there."""
    shown = [str(step) for step in path if step.kind != OK]
    return "keys " + ",".join(shown) if shown else "no keys"


@dataclass(frozen=True, slots=True)
class Heard:
    """What the caller hears (voice) or sees (text) at one screen, and how to get there.

    ``screen`` is the node id, or ``<node>.noinput.<n>`` / ``<node>.nomatch.<n>`` for a
    retry message. ``options`` are the visible choices when the node waits for a key.
    """

    screen: str
    node: str
    kind: str
    text: str
    options: tuple[MenuChoice, ...]
    path: KeyPath

    @property
    def title(self) -> str:
        return f"{self.kind} {self.screen}"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a call ends, as the caller and the agent see it (the node that did it is not part of it)."""

    kind: str  # "routed", "hung_up", or "error" (the flow broke: the host would use its own fallback)
    queue: str | None = None
    priority: int | None = None
    reason: str | None = None

    def __str__(self) -> str:
        if self.kind == "routed":
            return f"queue {self.queue} (priority {self.priority}): {self.reason}"
        if self.kind == "hung_up":
            return f"hang-up ({self.reason})"
        return f"error: {self.reason}"


Router = Callable[["CallerProfile", Destination], Destination]
"""Where a routed call really goes: the menu's queue in, the routing rules' decision out."""


@dataclass(frozen=True, slots=True)
class Reached:
    destination: Destination
    node: str | None
    path: KeyPath


@dataclass(frozen=True)
class Exploration:
    """Everything one profile can hear and reach in one tree, each with a shortest key path.

    ``screens`` holds one entry per distinct (screen, text, options); a screen whose
    text depends on earlier choices appears once per variant. ``complete`` is False
    when ``max_states`` stopped the walk or ``max_depth`` left choices untried.
    """

    profile: CallerProfile
    language: str
    screens: tuple[Heard, ...]
    destinations: tuple[Reached, ...]
    states: int
    truncated: bool
    depth_limited: bool

    @property
    def complete(self) -> bool:
        return not (self.truncated or self.depth_limited)

    def screen(self, screen: str) -> tuple[Heard, ...]:
        return tuple(h for h in self.screens if h.screen == screen)


def explore(
    tree: Tree,
    profile: CallerProfile,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_states: int = DEFAULT_MAX_STATES,
    runner: ActionRunner | None = None,
    router: Router | None = None,
) -> Exploration:
    """Try every choice ``profile`` could make in ``tree``, breadth first, within the bounds.

    At a menu (or a ``confirm:``) each visible key, one key that is not offered and a
    timeout; at a digits entry one valid-looking entry and a timeout; at an action the
    runner's success (``DemoActionRunner`` by default) and a plain failure.
    ``max_depth`` counts caller inputs; ``max_states`` counts distinct waiting states.
    ``router`` turns the menu's route into the routing rules' decision for this profile
    (:func:`ivr.tools.as_caller.rules_router`), as a real call's would be.
    """
    runner = runner or DemoActionRunner()
    ctx = profile.caller_context()
    walker = _Walker(tree, profile, ctx, runner)
    seen: set[Hashable] = set()
    queue: deque[KeyPath] = deque([()])
    truncated = depth_limited = False
    language = Session(tree, ctx, channel=profile.channel).language
    while queue:
        path = queue.popleft()
        session, actions, error = walker.run(path)
        walker.record(actions, path)
        if error is not None:
            walker.reach(Destination("error", reason=f"{error.error_id}: {error}"), getattr(error, "node", None), path)
            continue
        outcome = session.outcome
        if session.finished and outcome is not None:
            reached = Destination(outcome.kind, outcome.queue, outcome.priority, outcome.reason)
            if router is not None and reached.kind == "routed":
                reached = router(profile, reached)
            walker.reach(reached, outcome.node, path)
            continue
        keep_result = session.waiting_for == "input" and session.current_node in walker.result_sensitive
        state = _state_key(session, keep_result)
        if state in seen:
            continue
        if len(seen) >= max_states:
            truncated = True
            break
        seen.add(state)
        steps = walker.choices(session, actions)
        if steps and steps[0].kind in _INPUT_KINDS and _depth(path) >= max_depth:
            depth_limited = True
            continue
        queue.extend((*path, step) for step in steps)
    return Exploration(
        profile=profile,
        language=language,
        screens=tuple(walker.screens.values()),
        destinations=tuple(walker.destinations.values()),
        states=len(seen),
        truncated=truncated,
        depth_limited=depth_limited,
    )


def _depth(path: KeyPath) -> int:
    return sum(1 for step in path if step.kind in _INPUT_KINDS)


def _freeze(value: Any) -> Hashable:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return repr(value)


def _state_key(session: Session, keep_result: bool) -> Hashable:
    """What decides the session's future: two paths ending in equal keys behave alike from here on.

    The engine has no public snapshot, so this reads the few slots that hold that
    state (retry counters, menu history for ``back``, the last action result). If
    they are renamed, this fails loudly in the tests.
    ``keep_result`` is False when no template can read ``result`` before the next
    action replaces it; leaving it out then merges states that only differ there.
    """
    return (
        session.current_node,
        session.waiting_for,
        session._noinput,
        session._nomatch,
        tuple(session._menus),
        _freeze(session.variables),
        _freeze(session._ctx["result"]) if keep_result else None,
    )


_RESULT_NAME = re.compile(r"\bresult\b")


def _result_sensitive(tree: Tree) -> frozenset[str]:
    """Nodes from which a template may read ``result`` before another action replaces it.

    Every action result is a separate branch of the walk, so keeping ``result`` in the
    state key multiplies states by the number of results seen; most trees read it only
    in the say node right after the action. A template "reads" it when its source names
    ``result`` (a conservative textual test: a false positive only costs time).
    """
    readers = {node_id for node_id, node in tree.nodes.items() if _RESULT_NAME.search(" ".join(_sources(node)))}
    if not readers:
        return frozenset()
    menus = [n for n, node in tree.nodes.items() if isinstance(node, MenuNode)]
    roots = [*menus, *([tree.entry] if tree.entry else [])]
    sensitive = set(readers)
    changed = True
    while changed:  # fixpoint over the edges that keep the current result
        changed = False
        for node_id, node in tree.nodes.items():
            if node_id in sensitive:
                continue
            if isinstance(node, (BackNode, RepeatNode)):
                targets = roots  # anywhere in the menu history: assume any menu
            else:
                targets = [t for field, t in _node_edges(node) if t and field not in _NEW_RESULT_EDGES]
            if any(t in sensitive for t in targets):
                sensitive.add(node_id)
                changed = True
    return frozenset(sensitive)


#: After these edges a new ActionResult has replaced ``result``.
_NEW_RESULT_EDGES = frozenset({"on_success", "on_failure"})


def _sources(node: Node) -> list[str]:
    """The source of every template a node renders or tests (static text is left out)."""
    out: list[str] = []
    prompts: list[Prompt | None] = []
    if node.when is not None:
        out.append(node.when.source)
    if isinstance(node, (MenuNode, CollectNode, ActionNode, OfferNode)):
        prompts.extend((*node.input.noinput, *node.input.nomatch))
    if isinstance(node, MenuNode):
        prompts.extend((node.prompt, node.title))
        for option in node.options:
            prompts.append(option.prompt)
            out.extend(e.source for e in (option.when, option.rank) if e is not None)
    elif isinstance(node, OfferNode):
        prompts.append(node.prompt)
        out.append(str(node.offer.source))
    elif isinstance(node, (SayNode, CollectNode)):
        prompts.append(node.prompt)
    elif isinstance(node, ActionNode):
        prompts.append(node.confirm)
        out.extend(str(template.source) for _, template in node.args if not template.is_static)
    elif isinstance(node, RouteNode):
        prompts.append(node.prompt)
        out.append(node.reason.source)
    elif isinstance(node, HangupNode):
        prompts.append(node.prompt)
    for prompt in prompts:
        if prompt is None or prompt.is_static:
            continue
        for parts in prompt.parts.values():
            for part in parts:
                if isinstance(part, TextTemplate):
                    out.append(part.source)
                elif isinstance(part, TypedTemplate):
                    out.append(str(part.value.source))
                    if part.code is not None:
                        out.append(part.code.source)
    return out


class _Walker:
    """Runs key paths against one tree for one profile and collects what they show."""

    def __init__(self, tree: Tree, profile: CallerProfile, ctx: CallerContext, runner: ActionRunner) -> None:
        self.tree = tree
        self.profile = profile
        self.ctx = ctx
        self.runner = runner
        self.screens: dict[tuple[str, str, tuple[MenuChoice, ...]], Heard] = {}
        self.destinations: dict[Destination, Reached] = {}
        self._prompt_nodes: dict[str, tuple[str, str]] = {}
        self.result_sensitive = _result_sensitive(tree)

    def run(self, path: KeyPath) -> tuple[Session, list[Action], FlowError | TemplateFailed | None]:
        """A fresh session driven along ``path``; the actions of its last turn, or the error that ended it."""
        session = Session(self.tree, self.ctx, channel=self.profile.channel)
        actions: list[Action] = []
        try:
            actions = session.handle(Started(self.profile.dnis))
            for step in path:
                actions = session.handle(self._event(step, actions))
        except (FlowError, TemplateFailed) as exc:
            return session, actions, exc
        return session, actions, None

    def _event(self, step: Step, actions: Sequence[Action]) -> Event:
        if step.kind in (KEY, DIGITS):
            return Digits(step.value)
        if step.kind == TIMEOUT:
            return Timeout()
        if step.kind == FAIL:
            return ActionResult(step.value, False, {})
        run = next(a for a in actions if isinstance(a, RunAction))
        result = self.runner.run(run.name, run.args, self.ctx)
        # A runner that cannot do the action still lets us see the success branch.
        return result if result.ok else ActionResult(run.name, True, {})

    def choices(self, session: Session, actions: Sequence[Action]) -> list[Step]:
        if session.waiting_for == "action_result":
            run = next(a for a in actions if isinstance(a, RunAction))
            return [Step(OK, run.name), Step(FAIL, run.name)]
        collect = next((a for a in reversed(actions) if isinstance(a, Collect)), None)
        if collect is None:
            return []
        node = self.tree.nodes.get(collect.node)
        if isinstance(node, CollectNode):
            return [Step(DIGITS, _valid_entry(node)), Step(TIMEOUT)]
        keys = [choice.key for choice in collect.options]
        steps = [Step(KEY, key) for key in keys]
        invalid = next((k for k in VALID_KEYS if k not in keys), None)
        if invalid is not None:
            steps.append(Step(KEY, invalid))
        steps.append(Step(TIMEOUT))
        return steps

    def record(self, actions: Sequence[Action], path: KeyPath) -> None:
        """Keep each screen of this turn: a node's plays joined, with the options of its Collect."""
        texts: dict[str, list[str]] = {}
        nodes: dict[str, str] = {}
        options: dict[str, tuple[MenuChoice, ...]] = {}
        for action in actions:
            if isinstance(action, Play):
                node, role = self._split(action.prompt_id)
                screen = action.prompt_id if role.startswith(("noinput.", "nomatch.")) else node
                texts.setdefault(screen, []).append(format_parts(action.parts, sounds=True))
                nodes[screen] = node
            elif isinstance(action, Collect) and action.node in texts:
                options[action.node] = action.options
        for screen, parts in texts.items():
            node = nodes[screen]
            kind = self.tree.nodes[node].kind if node in self.tree.nodes else "prompt"
            text = " ".join(p for p in parts if p)
            heard = Heard(screen, node, kind, text, options.get(screen, ()), path)
            self.screens.setdefault((screen, text, heard.options), heard)

    def reach(self, destination: Destination, node: str | None, path: KeyPath) -> None:
        self.destinations.setdefault(destination, Reached(destination, node, path))

    def _split(self, prompt_id: str) -> tuple[str, str]:
        """(node, role) of a prompt id ``<node>.<role>``; node ids may hold dots, so try the longest."""
        found = self._prompt_nodes.get(prompt_id)
        if found is None:
            found = (prompt_id, "")
            pos = len(prompt_id)
            while (pos := prompt_id.rfind(".", 0, pos)) > 0:
                if prompt_id[:pos] in self.tree.nodes:
                    found = (prompt_id[:pos], prompt_id[pos + 1 :])
                    break
            self._prompt_nodes[prompt_id] = found
        return found


def _valid_entry(node: CollectNode) -> str:
    """Digits the node accepts, when a simple guess finds some: ones, then zeros, shortest first."""
    for length in range(node.min_digits, node.max_digits + 1):
        for digit in "10":
            entry = digit * length
            if node.pattern is None or node.pattern.fullmatch(entry):
                return entry
    return "1" * node.min_digits


# -- comparing two trees ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DestinationChange:
    """The same way out (same route node, or same queue) now ends differently."""

    old: Reached
    new: Reached


@dataclass(frozen=True, slots=True)
class ScreenChange:
    """A screen reachable in only one tree; ``path`` reaches it in that tree."""

    screen: str
    title: str
    path: KeyPath


@dataclass(frozen=True, slots=True)
class TextChange:
    screen: str
    title: str
    old: tuple[str, ...]
    new: tuple[str, ...]
    path: KeyPath


@dataclass(frozen=True, slots=True)
class OptionChange:
    screen: str
    title: str
    key: str
    label: str
    path: KeyPath


@dataclass(frozen=True)
class ProfileDiff:
    """What changes for one caller profile; every item carries a key path that shows it."""

    profile: CallerProfile
    language: str
    destinations_removed: tuple[Reached, ...] = ()
    destinations_added: tuple[Reached, ...] = ()
    destinations_changed: tuple[DestinationChange, ...] = ()
    screens_removed: tuple[ScreenChange, ...] = ()
    screens_added: tuple[ScreenChange, ...] = ()
    texts_changed: tuple[TextChange, ...] = ()
    options_removed: tuple[OptionChange, ...] = ()
    options_added: tuple[OptionChange, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return any(
            (
                self.destinations_removed,
                self.destinations_added,
                self.destinations_changed,
                self.screens_removed,
                self.screens_added,
                self.texts_changed,
                self.options_removed,
                self.options_added,
            )
        )

    def to_text(self) -> str:
        """A few lines per change, each ending with the keys that show it (``[keys 0]``)."""
        p = self.profile
        if not self.changed:
            return "\n".join([f"no change for {p.name}", *(f"  note: {n}" for n in self.notes)])
        head = f"{p.name} ({self.language}, {p.channel}" + (f", dialled {p.dnis})" if p.dnis else ")")
        lines = [head + ":"]
        for c in self.destinations_changed:
            lines.append(f"  destination changed  [{format_path(c.new.path)}]")
            lines.append(f"    old: {c.old.destination}")
            lines.append(f"    new: {c.new.destination}")
        for r in self.destinations_removed:
            lines.append(f"  destination gone: {r.destination}  [old tree: {format_path(r.path)}]")
        for r in self.destinations_added:
            lines.append(f"  new destination: {r.destination}  [{format_path(r.path)}]")
        for s in self.screens_removed:
            lines.append(f"  no longer reachable: {s.title}  [old tree: {format_path(s.path)}]")
        for s in self.screens_added:
            lines.append(f"  newly reachable: {s.title}  [{format_path(s.path)}]")
        for t in self.texts_changed:
            lines.append(f"  {t.title} says something else  [{format_path(t.path)}]")
            lines.extend(f"    old: {text}" for text in t.old)
            lines.extend(f"    new: {text}" for text in t.new)
        for o in self.options_removed:
            lines.append(f"  {o.title} lost option {o.key}. {o.label}  [old tree: {format_path(o.path)}]")
        for o in self.options_added:
            lines.append(f"  {o.title} gained option {o.key}. {o.label}  [{format_path(o.path)}]")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        def reached(r: Reached) -> dict[str, Any]:
            d = r.destination
            return {
                "kind": d.kind,
                "queue": d.queue,
                "priority": d.priority,
                "reason": d.reason,
                "node": r.node,
                "keys": _keys(r.path),
            }

        def screen(s: ScreenChange) -> dict[str, Any]:
            return {"screen": s.screen, "title": s.title, "keys": _keys(s.path)}

        def option(o: OptionChange) -> dict[str, Any]:
            return {"screen": o.screen, "key": o.key, "label": o.label, "keys": _keys(o.path)}

        p = self.profile
        return {
            "profile": p.name,
            "language": self.language,
            "channel": p.channel,
            "dnis": p.dnis,
            "changed": self.changed,
            "destinations": {
                "removed": [reached(r) for r in self.destinations_removed],
                "added": [reached(r) for r in self.destinations_added],
                "changed": [{"old": reached(c.old), "new": reached(c.new)} for c in self.destinations_changed],
            },
            "screens": {
                "removed": [screen(s) for s in self.screens_removed],
                "added": [screen(s) for s in self.screens_added],
                "text_changed": [
                    {
                        "screen": t.screen,
                        "title": t.title,
                        "old": list(t.old),
                        "new": list(t.new),
                        "keys": _keys(t.path),
                    }
                    for t in self.texts_changed
                ],
                "options_removed": [option(o) for o in self.options_removed],
                "options_added": [option(o) for o in self.options_added],
            },
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class TreeDiff:
    """Per profile, what publishing ``new`` in place of ``old`` changes for that caller."""

    old_version: str
    new_version: str
    profiles: tuple[ProfileDiff, ...]
    max_depth: int = DEFAULT_MAX_DEPTH

    @property
    def changed(self) -> bool:
        return any(p.changed for p in self.profiles)

    def for_profile(self, name: str) -> ProfileDiff:
        for p in self.profiles:
            if p.profile.name == name:
                return p
        raise KeyError(name)

    def to_text(self) -> str:
        lines = [
            f"menu tree {self.old_version} -> {self.new_version}: {len(self.profiles)} caller profile(s), "
            f"every choice tried up to {self.max_depth} inputs deep"
        ]
        for p in self.profiles:
            lines.append("")
            lines.append(p.to_text())
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; lists keep the report's order (nearest first), so equal inputs give equal output."""
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "max_depth": self.max_depth,
            "changed": self.changed,
            "profiles": [p.to_json() for p in self.profiles],
        }


def _keys(path: KeyPath) -> list[str]:
    return [str(step) for step in path if step.kind != OK]


def diff_trees(
    old: Tree,
    new: Tree,
    profiles: Iterable[CallerProfile],
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_states: int = DEFAULT_MAX_STATES,
    runner: ActionRunner | None = None,
    router: Router | None = None,
) -> TreeDiff:
    """Explore both trees as each profile and compare what the caller hears and where they can go."""
    out = []
    for profile in profiles:
        before = explore(old, profile, max_depth=max_depth, max_states=max_states, runner=runner, router=router)
        after = explore(new, profile, max_depth=max_depth, max_states=max_states, runner=runner, router=router)
        out.append(compare(before, after))
    return TreeDiff(old.version, new.version, tuple(out), max_depth)


def compare(old: Exploration, new: Exploration) -> ProfileDiff:
    """The differences between two explorations of the same profile."""
    removed, added, changed = _compare_destinations(old.destinations, new.destinations)
    screens = _compare_screens(old.screens, new.screens)
    # Hitting max_depth is the bound working as meant (retry counters and menu history multiply
    # states long after every screen was seen); hitting max_states means the walk was cut short.
    notes = [
        f"{which} tree: stopped after {e.states} states (max_states); some paths were not tried"
        for which, e in (("old", old), ("new", new))
        if e.truncated
    ]
    return ProfileDiff(
        profile=new.profile,
        language=new.language,
        destinations_removed=removed,
        destinations_added=added,
        destinations_changed=changed,
        notes=tuple(notes),
        **screens,
    )


def _compare_destinations(
    old: Sequence[Reached], new: Sequence[Reached]
) -> tuple[tuple[Reached, ...], tuple[Reached, ...], tuple[DestinationChange, ...]]:
    old_ends = {r.destination for r in old}
    new_ends = {r.destination for r in new}
    gone = [r for r in old if r.destination not in new_ends]
    came = [r for r in new if r.destination not in old_ends]
    changed: list[DestinationChange] = []
    # Pair a vanished end with a new one from the same route node first (the node was edited),
    # then with one to the same queue (priority or reason edited); the rest are plain removals/additions.
    for same in (
        lambda a, b: a.node is not None and a.node == b.node and a.destination.kind == b.destination.kind,
        lambda a, b: (
            a.destination.kind == b.destination.kind == "routed" and a.destination.queue == b.destination.queue
        ),
    ):
        for o in list(gone):
            match = next((n for n in came if same(o, n)), None)
            if match is not None:
                changed.append(DestinationChange(o, match))
                gone.remove(o)
                came.remove(match)
    changed.sort(key=lambda c: (len(c.new.path), str(c.new.destination)))
    return tuple(gone), tuple(came), tuple(changed)


def _compare_screens(old: Sequence[Heard], new: Sequence[Heard]) -> dict[str, Any]:
    old_by = _by_screen(old)
    new_by = _by_screen(new)
    removed = [ScreenChange(s, v[0].title, v[0].path) for s, v in old_by.items() if s not in new_by]
    added = [ScreenChange(s, v[0].title, v[0].path) for s, v in new_by.items() if s not in old_by]
    texts: list[TextChange] = []
    options_removed: list[OptionChange] = []
    options_added: list[OptionChange] = []
    for screen, after in new_by.items():
        before = old_by.get(screen)
        if before is None:
            continue
        old_texts = tuple(dict.fromkeys(h.text for h in before))
        new_texts = tuple(dict.fromkeys(h.text for h in after))
        if set(old_texts) != set(new_texts):
            first_new = (
                next(h for h in after if h.text not in old_texts) if set(new_texts) - set(old_texts) else after[0]
            )
            texts.append(TextChange(screen, after[0].title, old_texts, new_texts, first_new.path))
        old_options = _options(before)
        new_options = _options(after)
        for choice, heard in old_options.items():
            if choice not in new_options:
                options_removed.append(OptionChange(screen, heard.title, choice.key, choice.label, heard.path))
        for choice, heard in new_options.items():
            if choice not in old_options:
                options_added.append(OptionChange(screen, heard.title, choice.key, choice.label, heard.path))
    return {
        "screens_removed": tuple(removed),
        "screens_added": tuple(added),
        "texts_changed": tuple(texts),
        "options_removed": tuple(options_removed),
        "options_added": tuple(options_added),
    }


def _by_screen(heard: Sequence[Heard]) -> dict[str, list[Heard]]:
    out: dict[str, list[Heard]] = {}
    for h in heard:
        out.setdefault(h.screen, []).append(h)
    return out


def _options(heard: Sequence[Heard]) -> dict[MenuChoice, Heard]:
    out: dict[MenuChoice, Heard] = {}
    for h in heard:
        for choice in h.options:
            out.setdefault(choice, h)
    return out
