"""Located YAML -> tree model, plus the facts the validator's checks need.

The parser is forgiving on purpose: it reports a problem, substitutes a
placeholder and carries on, so one run lists every mistake in every file. The
model it builds is only handed out by the loader when no problem was found.
Graph-wide checks (references, reachability, loops, sounds, languages, screen
length) live in :mod:`ivr.flow.validate`; they read the :class:`Draft`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.config.problems import Loc, Problem, did_you_mean, type_name
from ivr.config.reader import ConfigReader
from ivr.config.source import YList, YMap, read_yaml
from ivr.config.templates import (
    Expression,
    TemplateCompileError,
    TemplateInfo,
    TextTemplate,
    ValueTemplate,
    analyse,
)
from ivr.flow import speech
from ivr.flow.actions import Collect, Sound
from ivr.flow.errors import PromptValueError
from ivr.flow.model import (
    DEFAULT_END_OF_SPEECH_S,
    DEFAULT_HANGUP_REASON,
    DEFAULT_INTERDIGIT_TIMEOUT_S,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_PRIORITY,
    DEFAULT_TERMINATOR,
    DEFAULT_TIMEOUT_S,
    NODE_TYPES,
    VALID_KEYS,
    ActionNode,
    BackNode,
    CollectNode,
    GotoNode,
    HangupNode,
    InputPolicy,
    MenuNode,
    Node,
    OfferNode,
    Option,
    RepeatNode,
    RouteNode,
    SayNode,
)
from ivr.flow.prompts import PartTemplate, Prompt, TypedTemplate

TOP_FIELDS = ("version", "languages", "entry", "fallback", "nodes")
COMMON_FIELDS = ("type", "when", "else", "description", "topic")
_TOPIC = re.compile(r"[a-z0-9_-]{1,40}")
INPUT_FIELDS = (
    "timeout",
    "interdigit_timeout",
    "end_of_speech",
    "noinput",
    "nomatch",
    "max_noinput",
    "max_nomatch",
    "on_noinput_exhausted",
    "on_nomatch_exhausted",
    "reprompt",
)
#: node type -> (required fields, optional fields), besides COMMON_FIELDS.
NODE_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "menu": (("prompt", "options"), ("title", "paginate", "min_confidence", *INPUT_FIELDS)),
    "say": (("prompt", "next"), ()),
    "collect": (
        ("prompt", "max_digits", "store_as", "next"),
        ("min_digits", "terminator", "pattern", "masked", *INPUT_FIELDS),
    ),
    "action": (("name", "on_success"), ("args", "confirm", "on_failure", "on_cancel", *INPUT_FIELDS)),
    "offer": (("offer", "prompt", "on_accept", "on_decline"), ("on_ignore", *INPUT_FIELDS)),
    "route": (("queue",), ("priority", "reason", "prompt")),
    "goto": (("target",), ()),
    "back": ((), ()),
    "repeat": ((), ()),
    "hangup": ((), ("prompt", "reason")),
}
OPTION_FIELDS = (("key", "label", "goto"), ("keywords", "when", "prompt", "rank"))
NUMBERS_TOP_FIELDS = ("numbers",)
NUMBER_ENTRY_FIELDS = ("entry", "action", "args", "then", "on_failure", "description", "driver")
#: Which controller driver answers a number on a voice call: FastAGI (the default) or the ARI application.
VOICE_DRIVERS = ("agi", "ari")
PART_KINDS = ("text", "sound", "number", "digits", "currency", "date")
TYPED_PART_KINDS = ("number", "digits", "currency", "date")
KEYS_TEXT = "0-9, *, #"

_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to a node id, from a node field, the tree settings or numbers.yaml."""

    source: str  # node id, or "" for the tree settings and numbers.yaml
    field: str
    target: str
    loc: Loc
    what: str
    free: bool  # followed without waiting for the caller (for the loop check)


@dataclass(frozen=True, slots=True)
class TemplateUse:
    info: TemplateInfo
    loc: Loc
    masked_ok: bool  # action args may carry masked variables; nothing else may


@dataclass(frozen=True, slots=True)
class TextUse:
    what: str
    languages: frozenset[str]
    loc: Loc


@dataclass(frozen=True, slots=True)
class SoundUse:
    name: str
    languages: tuple[str, ...] | None  # None: every language of the tree
    loc: Loc


@dataclass(frozen=True, slots=True)
class ActionUse:
    name: str
    args: frozenset[str]
    loc: Loc
    name_loc: Loc
    # args written as plain values (no template): checked against the action's types at load time
    literals: tuple[tuple[str, Any, Loc], ...] = ()


@dataclass
class Draft:
    """Everything the parser learned; the loader turns it into a Tree if it holds no problem."""

    problems: list[Problem] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    first_loc: Loc = field(default_factory=lambda: Loc("<no files>"))
    version: str = ""
    languages: tuple[str, ...] = ("en",)
    entry: str | None = None
    fallback: str | None = None
    nodes: dict[str, Node] = field(default_factory=dict)
    node_locs: dict[str, Loc] = field(default_factory=dict)  # every declared id, parsed or not
    roots: list[str] = field(default_factory=list)  # synthesised entry nodes (numbers.yaml shorthand)
    refs: list[Ref] = field(default_factory=list)
    templates: list[TemplateUse] = field(default_factory=list)
    texts: list[TextUse] = field(default_factory=list)
    sounds: list[SoundUse] = field(default_factory=list)
    actions: list[ActionUse] = field(default_factory=list)
    stores: dict[str, bool] = field(default_factory=dict)  # variable -> masked
    numbers: dict[str, str] = field(default_factory=dict)
    drivers: dict[str, str] = field(default_factory=dict)  # dnis -> voice driver, when not the default
    # A file could not be read or parsed: tree-wide checks would only report its absence.
    incomplete: bool = False


def expand_paths(paths: str | Path | Iterable[str | Path], problems: list[Problem]) -> list[Path]:
    """Menu files named by ``paths``: files as given, directories as their *.yaml/*.yml, sorted."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                problems.append(Problem(str(path), 1, 1, "directory holds no .yaml files"))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(Problem(str(path), 1, 1, "no such file or directory"))
    return files


def build_draft(files: Sequence[Path], numbers: str | Path | None = None) -> Draft:
    draft = Draft()
    _Parser(draft).run(files, numbers)
    return draft


class _Fields:
    """One YAML mapping read against a schema; each problem is reported once."""

    def __init__(
        self,
        parser: _Parser,
        data: YMap,
        what: str,
        required: Sequence[str],
        optional: Sequence[str],
    ) -> None:
        self.p = parser
        self.m = data
        self.what = what
        ConfigReader(parser.draft.problems).fields(data, (*required, *optional), required, what)

    def has(self, name: str) -> bool:
        return name in self.m

    def loc(self, name: str) -> Loc:
        return self.m.value_loc(name)

    def raw(self, name: str, default: Any = None) -> Any:
        return self.m.get(name, default)

    def wrong(self, name: str, expected: str) -> None:
        got = type_name(self.m.get(name))
        self.p.problem(self.loc(name), f"'{name}' in {self.what} must be {expected}, not {got}")

    def string(self, name: str, default: str = "") -> str:
        value = self.m.get(name, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, str) and value:
            return value
        if isinstance(value, str):
            self.p.problem(self.loc(name), f"'{name}' in {self.what} must not be empty")
        else:
            self.wrong(name, "a string")
        return default

    def integer(self, name: str, default: int, minimum: int) -> int:
        value = self.m.get(name, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            self.wrong(name, "an integer")
            return default
        if value < minimum:
            self.p.problem(self.loc(name), f"'{name}' in {self.what} must be at least {minimum}")
            return default
        return value

    def number(self, name: str, default: float, *, maximum: float | None = None) -> float:
        value = self.m.get(name, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            self.wrong(name, "a number")
            return default
        if value <= 0 or (maximum is not None and value > maximum):
            limit = f"between 0 and {maximum:g}" if maximum is not None else "greater than 0"
            self.p.problem(self.loc(name), f"'{name}' in {self.what} must be {limit}")
            return default
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.m.get(name, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.wrong(name, "true or false")
            return default
        return value

    def ref(self, source: str, name: str, *, free: bool) -> str:
        """A node id in field ``name``; recorded for the reference and graph checks."""
        target = self.string(name)
        if target:
            self.p.draft.refs.append(Ref(source, name, target, self.loc(name), self.what, free))
        return target


class _Parser:
    def __init__(self, draft: Draft) -> None:
        self.draft = draft
        self.languages: tuple[str, ...] = ("en",)
        self.fallback_lang = "en"

    def problem(self, loc: Loc, message: str) -> None:
        self.draft.problems.append(Problem.at(loc, message))

    # -- the tree settings and node ids (pass 1) ---------------------------------------

    def run(self, files: Sequence[Path], numbers: str | Path | None) -> None:
        draft = self.draft
        settings: dict[str, tuple[Any, Loc]] = {}
        raw_nodes: list[tuple[str, YMap | Any, Loc]] = []
        for path in files:
            draft.sources.append(str(path))
            doc = read_yaml(path, draft.problems)
            if doc is None:
                draft.incomplete = True
                continue
            if not isinstance(doc, YMap):
                self.problem(Loc(str(path)), f"the top level must be a mapping, not {type_name(doc)}")
                draft.incomplete = True
                continue
            if draft.first_loc.path == "<no files>":
                draft.first_loc = doc.loc
            _Fields(self, doc, "the tree settings", (), TOP_FIELDS)
            for key in ("version", "languages", "entry", "fallback"):
                if key in doc:
                    self._setting(settings, key, doc[key], doc.value_loc(key))
            nodes = doc.get("nodes")
            if nodes is None:
                continue
            if not isinstance(nodes, YMap):
                self.problem(doc.value_loc("nodes"), f"'nodes' must be a mapping, not {type_name(nodes)}")
                continue
            for node_id, body in nodes.items():
                key_loc = nodes.key_loc(node_id)
                if not isinstance(node_id, str) or not node_id:
                    raw = nodes.raw_keys.get(node_id, str(node_id))
                    self.problem(key_loc, f"node id '{raw}' must be a string; quote it")
                    continue
                if node_id in draft.node_locs:
                    self.problem(
                        key_loc, f"duplicate node id '{node_id}' (first defined at {draft.node_locs[node_id]})"
                    )
                    continue
                draft.node_locs[node_id] = key_loc
                raw_nodes.append((node_id, body, key_loc))
        if not files or draft.incomplete:
            return
        self._apply_settings(settings)
        self._prescan_stores(raw_nodes)
        for node_id, body, key_loc in raw_nodes:
            self.node(node_id, body, key_loc)
        if numbers is not None:
            self.numbers(Path(numbers))

    def _setting(self, settings: dict[str, tuple[Any, Loc]], key: str, value: Any, loc: Loc) -> None:
        if key in settings:
            first, first_loc = settings[key]
            if first != value:
                self.problem(loc, f"'{key}' differs from the value set at {first_loc}")
            return
        settings[key] = (value, loc)

    def _apply_settings(self, settings: dict[str, tuple[Any, Loc]]) -> None:
        draft = self.draft
        if "version" in settings:
            version, loc = settings["version"]
            if isinstance(version, (str, int, float)) and not isinstance(version, bool) and str(version):
                draft.version = str(version)
            else:
                self.problem(loc, f"'version' must be a string or a number, not {type_name(version)}")
        else:
            self.problem(draft.first_loc, "missing required field 'version' in the tree settings")
        if "languages" in settings:
            value, loc = settings["languages"]
            langs = self._languages(value, loc)
            if langs:
                self.languages = langs
        else:
            self.problem(draft.first_loc, "missing required field 'languages' in the tree settings")
        self.fallback_lang = self.languages[0]
        draft.languages = self.languages
        for key in ("entry", "fallback"):
            if key in settings:
                value, loc = settings[key]
                if isinstance(value, str) and value:
                    setattr(draft, key, value)
                    draft.refs.append(Ref("", key, value, loc, "the tree settings", False))
                else:
                    self.problem(loc, f"'{key}' in the tree settings must be a node id, not {type_name(value)}")

    def _languages(self, value: Any, loc: Loc) -> tuple[str, ...]:
        if not isinstance(value, YList) or not value:
            self.problem(loc, "'languages' must be a non-empty list of language codes, e.g. [en, ru]")
            return ()
        out: list[str] = []
        for i, lang in enumerate(value):
            if not isinstance(lang, str) or not re.fullmatch(r"[a-z]{2,3}([_-][A-Za-z0-9]+)?", lang):
                self.problem(value.item_loc(i), f"'{lang}' is not a language code such as en or ru")
            elif lang in out:
                self.problem(value.item_loc(i), f"language '{lang}' is listed twice")
            else:
                out.append(lang)
        return tuple(out)

    def _prescan_stores(self, raw_nodes: list[tuple[str, Any, Loc]]) -> None:
        # Masking must be known before action args are compiled, whatever the file order.
        for _node_id, body, _loc in raw_nodes:
            if isinstance(body, YMap) and body.get("type") == "collect":
                name = body.get("store_as")
                if isinstance(name, str) and name:
                    masked = body.get("masked") is True
                    self.draft.stores[name] = self.draft.stores.get(name, False) or masked

    # -- nodes (pass 2) ---------------------------------------------------------------

    def node(self, node_id: str, body: Any, key_loc: Loc) -> None:
        what = f"node '{node_id}'"
        if not isinstance(body, YMap):
            self.problem(key_loc, f"{what} must be a mapping, not {type_name(body)}")
            return
        kind = body.get("type")
        if "type" not in body:
            self.problem(body.loc, f"missing required field 'type' in {what}")
            return
        if not isinstance(kind, str) or kind not in NODE_FIELDS:
            shown = kind if isinstance(kind, str) else type_name(kind)
            hint = did_you_mean(shown, NODE_FIELDS) or f"; expected one of {', '.join(sorted(NODE_FIELDS))}"
            self.problem(body.value_loc("type"), f"unknown node type '{shown}' in {what}{hint}")
            return
        required, optional = NODE_FIELDS[kind]
        f = _Fields(self, body, what, required, (*COMMON_FIELDS, *optional))
        when = self.expression(f, "when", f"{node_id}.when")
        else_ = f.ref(node_id, "else", free=True) or None
        if when is not None and else_ is None:
            if kind != "menu":
                self.problem(f.loc("when"), f"'when' in {what} needs an 'else' target")
            elif self.draft.fallback is None:
                self.problem(body.loc, f"'else' is not set in {what} and the tree has no 'fallback'")
            else:
                else_ = self.draft.fallback
        topic = self.topic(f)
        built = getattr(self, f"_{kind}")(node_id, f, when=when, else_=else_, topic=topic)
        assert isinstance(built, NODE_TYPES[kind])
        self.draft.nodes[node_id] = built

    def topic(self, f: _Fields) -> str | None:
        """What the caller came about (roaming, billing), for the report's topics by channel."""
        value = f.raw("topic", None)
        if value is None:
            return None
        if not isinstance(value, str) or not _TOPIC.fullmatch(value):
            self.problem(f.loc("topic"), f"'topic' in {f.what} must be 1-40 lower-case letters, digits, _ and -")
            return None
        return value

    def _menu(self, node_id: str, f: _Fields, **common: Any) -> MenuNode:
        prompt = self.prompt(f, "prompt", f"{node_id}.prompt")
        title = self.prompt(f, "title", f"{node_id}.title") if f.has("title") else None
        f.boolean("paginate", False)  # accepted from older trees: text channels now page every screen themselves
        options = self.options(node_id, f)
        policy = self.input_policy(node_id, f)
        min_conf = f.number("min_confidence", DEFAULT_MIN_CONFIDENCE, maximum=1.0)
        return MenuNode(
            id=node_id,
            prompt=prompt,
            title=title,
            options=options,
            input=policy,
            min_confidence=min_conf,
            conditional=any(o.when is not None or o.rank is not None for o in options),
            ranked=any(o.rank is not None for o in options),
            **common,
        )

    def options(self, node_id: str, f: _Fields) -> tuple[Option, ...]:
        raw = f.raw("options")
        if raw is None:
            return ()
        if not isinstance(raw, YList):
            f.wrong("options", "a list")
            return ()
        if not raw:
            self.problem(f.loc("options"), f"'options' in node '{node_id}' must not be empty")
        out: list[Option] = []
        seen: dict[str, tuple[int, bool]] = {}
        for i, item in enumerate(raw, start=1):
            what = f"option {i} of node '{node_id}'"
            if not isinstance(item, YMap):
                self.problem(raw.item_loc(i - 1), f"{what} must be a mapping, not {type_name(item)}")
                continue
            of = _Fields(self, item, what, *OPTION_FIELDS)
            key = self.option_key(of, node_id)
            when = self.expression(of, "when", f"{node_id}.option.{i}.when")
            rank = self.expression(of, "rank", f"{node_id}.option.{i}.rank")
            if key:
                if key in seen and not (seen[key][1] and when is not None):
                    self.problem(
                        of.loc("key"),
                        f"duplicate key '{key}' in node '{node_id}' (first used by option {seen[key][0]})",
                    )
                seen.setdefault(key, (i, when is not None))
            out.append(
                Option(
                    index=i - 1,
                    key=key,
                    goto=of.ref(node_id, "goto", free=False),
                    label=self.label(of, "label"),
                    keywords=self.keywords(of),
                    when=when,
                    prompt=self.prompt(of, "prompt", f"{node_id}.option.{i}") if of.has("prompt") else None,
                    rank=rank,
                )
            )
        return tuple(out)

    def option_key(self, of: _Fields, node_id: str) -> str:
        value = of.raw("key", _MISSING)
        if value is _MISSING:
            return ""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            hint = " (write '#' and '*' in quotes)" if value is None else ""
            self.problem(of.loc("key"), f"'key' in {of.what} must be one of {KEYS_TEXT}, not {type_name(value)}{hint}")
            return ""
        if len(value) != 1 or value not in VALID_KEYS:
            self.problem(of.loc("key"), f"key '{value}' in {of.what} must be one of {KEYS_TEXT}")
            return ""
        return value

    def label(self, of: _Fields, name: str) -> dict[str, str]:
        value = of.raw(name, _MISSING)
        if value is _MISSING:
            return {}
        what = f"'{name}' in {of.what}"
        out: dict[str, str] = {}
        if isinstance(value, str):
            out[self.fallback_lang] = value
            self.draft.texts.append(TextUse(what, frozenset(out), of.loc(name)))
        elif isinstance(value, YMap):
            for lang, text in value.items():
                if self.known_language(lang, value.key_loc(lang), what) and isinstance(text, str):
                    out[lang] = text
                elif isinstance(lang, str) and lang in self.languages:
                    self.problem(value.value_loc(lang), f"{what} must be text, not {type_name(text)}")
            self.draft.texts.append(TextUse(what, frozenset(out), of.loc(name)))
        else:
            of.wrong(name, "text or a mapping of language to text")
        return out

    def keywords(self, of: _Fields) -> dict[str, tuple[str, ...]]:
        value = of.raw("keywords", _MISSING)
        if value is _MISSING:
            return {}
        per_lang: dict[str, Any] = {}
        if isinstance(value, YMap):
            for lang, words in value.items():
                if self.known_language(lang, value.key_loc(lang), f"'keywords' in {of.what}"):
                    per_lang[lang] = (words, value.value_loc(lang))
        else:
            per_lang[self.fallback_lang] = (value, of.loc("keywords"))
        out: dict[str, tuple[str, ...]] = {}
        for lang, (words, loc) in per_lang.items():
            if isinstance(words, str):
                words = [words]
            if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
                self.problem(loc, f"'keywords' in {of.what} must be a list of words")
                continue
            out[lang] = tuple(dict.fromkeys(speech.normalise(w) for w in words))
        return out

    def known_language(self, lang: Any, loc: Loc, what: str) -> bool:
        if isinstance(lang, str) and lang in self.languages:
            return True
        shown = lang if isinstance(lang, str) else str(lang)
        self.problem(
            loc,
            f"unknown language '{shown}' in {what}; the tree's languages are {', '.join(self.languages)}",
        )
        return False

    def input_policy(self, node_id: str, f: _Fields) -> InputPolicy:
        return InputPolicy(
            timeout_s=f.number("timeout", DEFAULT_TIMEOUT_S),
            interdigit_timeout_s=f.number("interdigit_timeout", DEFAULT_INTERDIGIT_TIMEOUT_S),
            end_of_speech_s=f.number("end_of_speech", DEFAULT_END_OF_SPEECH_S),
            noinput=self.prompt_list(f, "noinput", node_id),
            nomatch=self.prompt_list(f, "nomatch", node_id),
            max_noinput=f.integer("max_noinput", DEFAULT_MAX_ATTEMPTS, 1),
            max_nomatch=f.integer("max_nomatch", DEFAULT_MAX_ATTEMPTS, 1),
            on_noinput_exhausted=self.ref_or_fallback(node_id, f, "on_noinput_exhausted", free=False),
            on_nomatch_exhausted=self.ref_or_fallback(node_id, f, "on_nomatch_exhausted", free=False),
            reprompt=f.boolean("reprompt", True),
        )

    def ref_or_fallback(self, node_id: str, f: _Fields, name: str, *, free: bool) -> str:
        if f.has(name):
            return f.ref(node_id, name, free=free)
        if self.draft.fallback is None:
            self.problem(f.m.loc, f"'{name}' is not set in {f.what} and the tree has no 'fallback'")
            return ""
        return self.draft.fallback

    def prompt_list(self, f: _Fields, name: str, node_id: str) -> tuple[Prompt, ...]:
        value = f.raw(name, _MISSING)
        if value is _MISSING:
            return ()
        items: list[tuple[Any, Loc]]
        if isinstance(value, YList):
            items = [(v, value.item_loc(i)) for i, v in enumerate(value)]
        else:
            items = [(value, f.loc(name))]
        return tuple(
            self.prompt_value(v, loc, f"{node_id}.{name}.{n}", f"'{name}' prompt {n} in {f.what}")
            for n, (v, loc) in enumerate(items, start=1)
        )

    def _offer(self, node_id: str, f: _Fields, **common: Any) -> OfferNode:
        raw = f.raw("offer")
        offer = None
        if isinstance(raw, str) and raw.strip():
            offer = self.value_template(raw, f.loc("offer"), f"{node_id}.offer", masked_ok=False)
        elif raw is not None:
            f.wrong("offer", "text: the offer's code, e.g. \"{{ customer.offer.code }}\"")
        on_decline = f.ref(node_id, "on_decline", free=False)
        on_ignore = f.ref(node_id, "on_ignore", free=False) if f.has("on_ignore") else on_decline
        policy = self.input_policy(node_id, f)
        # An offer asks once: silence is an answer ("ignored"), not something to ask about three times.
        policy = dataclasses.replace(policy, max_noinput=f.integer("max_noinput", 1, 1),
                                     on_noinput_exhausted=on_ignore,
                                     on_nomatch_exhausted=on_ignore if not f.has("on_nomatch_exhausted")
                                     else policy.on_nomatch_exhausted)
        return OfferNode(
            id=node_id,
            offer=offer if offer is not None else ValueTemplate("", f"{node_id}.offer"),
            prompt=self.prompt(f, "prompt", f"{node_id}.prompt"),
            input=policy,
            on_accept=f.ref(node_id, "on_accept", free=False),
            on_decline=on_decline,
            on_ignore=on_ignore,
            **common,
        )

    def _say(self, node_id: str, f: _Fields, **common: Any) -> SayNode:
        return SayNode(
            id=node_id,
            prompt=self.prompt(f, "prompt", f"{node_id}.prompt"),
            next=f.ref(node_id, "next", free=True),
            **common,
        )

    def _collect(self, node_id: str, f: _Fields, **common: Any) -> CollectNode:
        prompt = self.prompt(f, "prompt", f"{node_id}.prompt")
        max_digits = f.integer("max_digits", 1, 1)
        min_digits = f.integer("min_digits", 1, 0)
        if min_digits > max_digits and f.has("max_digits"):
            self.problem(
                f.loc("min_digits"),
                f"'min_digits' ({min_digits}) is greater than 'max_digits' ({max_digits}) in {f.what}",
            )
        terminator = DEFAULT_TERMINATOR
        if f.has("terminator"):
            raw = f.raw("terminator")
            if raw == "" or (isinstance(raw, str) and len(raw) == 1 and raw in VALID_KEYS):
                terminator = raw
            else:
                hint = " (write '#' in quotes)" if raw is None else ""
                self.problem(f.loc("terminator"), f"'terminator' in {f.what} must be one of {KEYS_TEXT} or ''{hint}")
        pattern = None
        if f.has("pattern"):
            source = f.string("pattern")
            try:
                pattern = re.compile(source) if source else None
            except re.error as exc:
                self.problem(f.loc("pattern"), f"'pattern' in {f.what} is not a valid regular expression: {exc}")
        masked = f.boolean("masked", False)
        store_as = f.string("store_as")
        if store_as and not _NAME.match(store_as):
            self.problem(f.loc("store_as"), f"'store_as' in {f.what} must be a name of letters, digits and '_'")
        policy = self.input_policy(node_id, f)
        return CollectNode(
            id=node_id,
            prompt=prompt,
            input=policy,
            min_digits=min_digits,
            max_digits=max_digits,
            terminator=terminator,
            pattern=pattern,
            masked=masked,
            store_as=store_as,
            next=f.ref(node_id, "next", free=False),
            collect=Collect(
                max_digits=max_digits,
                min_digits=min_digits,
                timeout_s=policy.timeout_s,
                interdigit_timeout_s=policy.interdigit_timeout_s,
                end_of_speech_s=policy.end_of_speech_s,
                terminator=terminator,
                escape_digits="",
                masked=masked,
                node=node_id,
            ),
            **common,
        )

    def _action(self, node_id: str, f: _Fields, **common: Any) -> ActionNode:
        name = f.string("name")
        args: list[tuple[str, ValueTemplate]] = []
        masked_args: set[str] = set()
        literals: list[tuple[str, Any, Loc]] = []
        raw_args = f.raw("args", _MISSING)
        if raw_args is not _MISSING and not isinstance(raw_args, YMap):
            f.wrong("args", "a mapping")
        elif isinstance(raw_args, YMap):
            for arg, value in raw_args.items():
                loc = raw_args.value_loc(arg)
                if not isinstance(arg, str):
                    self.problem(raw_args.key_loc(arg), f"arg names in {f.what} must be strings")
                    continue
                if isinstance(value, (dict, list)) or value is None:
                    self.problem(loc, f"arg '{arg}' in {f.what} must be a string, number or boolean")
                    continue
                template = self.value_template(value, loc, f"{node_id}.args.{arg}", masked_ok=True)
                if template is None:
                    continue
                args.append((arg, template))
                if template.is_static:
                    literals.append((arg, value, loc))
                if isinstance(value, str) and self._uses_masked(value):
                    masked_args.add(arg)
        if name:
            self.draft.actions.append(
                ActionUse(name, frozenset(a for a, _ in args), self.draft.node_locs[node_id], f.loc("name"),
                          tuple(literals))
            )
        confirm = self.prompt(f, "confirm", f"{node_id}.confirm") if f.has("confirm") else None
        free = confirm is None
        if confirm is not None:
            policy = self.input_policy(node_id, f)
        else:
            policy = InputPolicy()
            for name_ in INPUT_FIELDS:
                if f.has(name_):
                    self.problem(f.m.key_loc(name_), f"'{name_}' in {f.what} only applies with 'confirm'")
        return ActionNode(
            id=node_id,
            name=name,
            args=tuple(args),
            masked_args=frozenset(masked_args),
            confirm=confirm,
            input=policy,
            on_success=f.ref(node_id, "on_success", free=free),
            on_failure=self.ref_or_fallback(node_id, f, "on_failure", free=free),
            on_cancel=f.ref(node_id, "on_cancel", free=False) or None,
            **common,
        )

    def _uses_masked(self, source: str) -> bool:
        try:
            refs = analyse(source).var_refs
        except TemplateCompileError:
            return False
        return any(self.draft.stores.get(v, False) for v in refs)

    def _route(self, node_id: str, f: _Fields, **common: Any) -> RouteNode:
        reason_src = f.string("reason") if f.has("reason") else ""
        reason = self.text_template(reason_src, f.loc("reason"), f"{node_id}.reason") or TextTemplate("", "")
        return RouteNode(
            id=node_id,
            queue=f.string("queue"),
            priority=f.integer("priority", DEFAULT_PRIORITY, -1000) if f.has("priority") else DEFAULT_PRIORITY,
            reason=reason,
            prompt=self.prompt(f, "prompt", f"{node_id}.prompt") if f.has("prompt") else None,
            **common,
        )

    def _goto(self, node_id: str, f: _Fields, **common: Any) -> GotoNode:
        return GotoNode(id=node_id, target=f.ref(node_id, "target", free=True), **common)

    def _back(self, node_id: str, f: _Fields, **common: Any) -> BackNode:
        return BackNode(id=node_id, **common)

    def _repeat(self, node_id: str, f: _Fields, **common: Any) -> RepeatNode:
        return RepeatNode(id=node_id, **common)

    def _hangup(self, node_id: str, f: _Fields, **common: Any) -> HangupNode:
        return HangupNode(
            id=node_id,
            prompt=self.prompt(f, "prompt", f"{node_id}.prompt") if f.has("prompt") else None,
            reason=f.string("reason", DEFAULT_HANGUP_REASON),
            **common,
        )

    # -- templates ------------------------------------------------------------------

    def _analyse(self, source: str, loc: Loc, masked_ok: bool) -> bool:
        try:
            info = analyse(source)
        except TemplateCompileError as exc:
            self.problem(loc, f"template does not compile: {exc.message}")
            return False
        self.draft.templates.append(TemplateUse(info, loc, masked_ok))
        return True

    def text_template(self, source: str, loc: Loc, where: str) -> TextTemplate | None:
        if not self._analyse(source, loc, masked_ok=False):
            return None
        try:
            return TextTemplate(source, where)
        except TemplateCompileError as exc:
            self.problem(loc, f"template does not compile: {exc.message}")
            return None

    def value_template(self, value: Any, loc: Loc, where: str, *, masked_ok: bool) -> ValueTemplate | None:
        if isinstance(value, str) and not self._analyse(value, loc, masked_ok):
            return None
        try:
            return ValueTemplate(value, where)
        except TemplateCompileError as exc:
            self.problem(loc, f"template does not compile: {exc.message}")
            return None

    def expression(self, f: _Fields, name: str, where: str) -> Expression | None:
        if not f.has(name):
            return None
        source = f.raw(name)
        if isinstance(source, bool):
            source = "true" if source else "false"
        if not isinstance(source, str) or not source.strip():
            f.wrong(name, "an expression")
            return None
        loc = f.loc(name)
        try:
            expression = Expression(source, where)
        except TemplateCompileError as exc:
            self.problem(loc, f"template does not compile: {exc.message}")
            return None
        self._analyse("{{ " + source + " }}", loc, masked_ok=False)
        return expression

    # -- prompts --------------------------------------------------------------------

    def prompt(self, f: _Fields, name: str, prompt_id: str) -> Prompt:
        if not f.has(name):
            return Prompt(prompt_id, {self.fallback_lang: ()})
        return self.prompt_value(f.raw(name), f.loc(name), prompt_id, f"'{name}' in {f.what}")

    def prompt_value(self, value: Any, loc: Loc, prompt_id: str, what: str) -> Prompt:
        per_lang: dict[str, tuple[PartTemplate, ...]] = {}
        if isinstance(value, YMap) and not any(k in PART_KINDS for k in value):
            if not value:
                self.problem(loc, f"{what} must not be empty")
            for lang, body in value.items():
                if self.known_language(lang, value.key_loc(lang), what):
                    per_lang[lang] = self.parts(body, value.value_loc(lang), prompt_id, what, (lang,))
            self.draft.texts.append(TextUse(what, frozenset(per_lang), loc))
        else:
            parts = self.parts(value, loc, prompt_id, what, None)
            if any(isinstance(p, TextTemplate) for p in parts):
                per_lang[self.fallback_lang] = parts
                self.draft.texts.append(TextUse(what, frozenset(per_lang), loc))
            else:  # sounds and typed values only: the same in every language
                per_lang = {lang: parts for lang in self.languages}
        if not per_lang:
            per_lang[self.fallback_lang] = ()
        base = per_lang.get(self.fallback_lang) or next(iter(per_lang.values()))
        for lang in self.languages:
            per_lang.setdefault(lang, base)
        try:
            return Prompt(prompt_id, per_lang)
        except PromptValueError as exc:  # a constant typed value is checked now, not during a call
            self.problem(loc, f"{what}: {exc.value_type} value is not a {exc.kind}")
            return Prompt(prompt_id, {lang: () for lang in per_lang})

    def parts(
        self, value: Any, loc: Loc, prompt_id: str, what: str, langs: tuple[str, ...] | None
    ) -> tuple[PartTemplate, ...]:
        if isinstance(value, YList):
            out: list[PartTemplate] = []
            for i, item in enumerate(value):
                part = self.part(item, value.item_loc(i), prompt_id, what, langs, in_list=True)
                if part is not None:
                    out.append(part)
            if not value:
                self.problem(loc, f"{what} must not be empty")
            return tuple(out)
        part = self.part(value, loc, prompt_id, what, langs, in_list=False)
        return () if part is None else (part,)

    def part(
        self, value: Any, loc: Loc, prompt_id: str, what: str, langs: tuple[str, ...] | None, *, in_list: bool
    ) -> PartTemplate | None:
        if isinstance(value, str):
            if not value.strip():
                self.problem(loc, f"{what} must not be empty")
                return None
            return self.text_template(value, loc, prompt_id)
        if isinstance(value, YMap):
            kinds = [k for k in value if k in PART_KINDS]
            if len(kinds) != 1:
                self.problem(loc, f"a prompt part in {what} needs exactly one of {', '.join(PART_KINDS)}")
                return None
            kind = kinds[0]
            allowed = ("code",) if kind == "currency" else ()
            pf = _Fields(self, value, f"a prompt part of {what}", (kind, *allowed), ())
            if kind == "text":
                text = pf.string("text")
                return self.text_template(text, pf.loc("text"), prompt_id) if text else None
            if kind == "sound":
                return self.sound(pf, langs)
            raw = value[kind]
            if isinstance(raw, (dict, list)) or raw is None or isinstance(raw, bool):
                pf.wrong(kind, "a value or a template")
                return None
            template = self.value_template(raw, pf.loc(kind), prompt_id, masked_ok=False)
            code = None
            if kind == "currency" and pf.has("code"):
                code_src = pf.string("code")
                code = self.text_template(code_src, pf.loc("code"), prompt_id) if code_src else None
            if template is None:
                return None
            return TypedTemplate(kind, template, code, prompt_id)
        expected = "text or a mapping such as {sound: name}" if in_list else "text, a list of parts or a mapping"
        self.problem(loc, f"{what} must be {expected}, not {type_name(value)}")
        return None

    def sound(self, pf: _Fields, langs: tuple[str, ...] | None) -> Sound | None:
        name = pf.string("sound")
        if not name:
            return None
        if name.startswith("/") or ".." in name.split("/") or "\\" in name or any(c in name for c in "{}%"):
            self.problem(pf.loc("sound"), f"sound name '{name}' must be a relative name without '..' or templates")
            return None
        self.draft.sounds.append(SoundUse(name, langs, pf.loc("sound")))
        return Sound(name)

    # -- numbers.yaml ---------------------------------------------------------------

    def numbers(self, path: Path) -> None:
        draft = self.draft
        doc = read_yaml(path, draft.problems)
        if doc is None:
            return
        if not isinstance(doc, YMap):
            self.problem(Loc(str(path)), f"the top level must be a mapping, not {type_name(doc)}")
            return
        _Fields(self, doc, "numbers.yaml", NUMBERS_TOP_FIELDS, ())
        table = doc.get("numbers")
        if table is None:
            return
        if not isinstance(table, YMap):
            self.problem(doc.value_loc("numbers"), f"'numbers' must be a mapping, not {type_name(table)}")
            return
        for dnis, entry in table.items():
            key_loc = table.key_loc(dnis)
            if not isinstance(dnis, str) or not dnis:
                raw = table.raw_keys.get(dnis, str(dnis))
                self.problem(key_loc, f'number {raw} must be quoted so it stays a string: "{raw}"')
                continue
            what = f"number '{dnis}'"
            value_loc = table.value_loc(dnis)
            if isinstance(entry, str) and entry:
                draft.numbers[dnis] = entry
                draft.refs.append(Ref("", "entry", entry, value_loc, what, False))
            elif isinstance(entry, YMap):
                self.number_entry(dnis, entry, what, key_loc)
            else:
                self.problem(value_loc, f"{what} must map to a node id or a mapping, not {type_name(entry)}")

    def number_entry(self, dnis: str, entry: YMap, what: str, key_loc: Loc) -> None:
        draft = self.draft
        f = _Fields(self, entry, what, (), NUMBER_ENTRY_FIELDS)
        if f.has("driver"):
            driver = f.string("driver")
            if driver not in VOICE_DRIVERS:
                self.problem(f.loc("driver"), f"'driver' in {what} must be one of {', '.join(VOICE_DRIVERS)}, "
                                              f"not {driver!r}")
            elif driver != VOICE_DRIVERS[0]:
                draft.drivers[dnis] = driver
        if f.has("entry"):
            if f.has("action"):
                self.problem(entry.loc, f"{what} sets both 'entry' and 'action'; use one")
            target = f.ref("", "entry", free=False)
            if target:
                draft.numbers[dnis] = target
            return
        if not f.has("action"):
            self.problem(entry.loc, f"{what} needs 'entry' (a node id) or 'action' with 'then'")
            return
        if not f.has("then"):
            self.problem(entry.loc, f"missing required field 'then' in {what}")
        # The shorthand is an ordinary action node, so the engine and checks need no special case.
        node_id = f"number:{dnis}"
        draft.node_locs[node_id] = key_loc
        body = YMap(entry.loc)
        for key, value in entry.items():
            target_key = {"action": "name", "then": "on_success"}.get(key, key)
            if key in ("entry", "description", "driver") or key not in NUMBER_ENTRY_FIELDS:
                continue
            body[target_key] = value
            body.key_locs[target_key] = entry.key_loc(key)
            body.value_locs[target_key] = entry.value_loc(key)
        inner = _Fields(self, body, what, (), ("name", "args", "on_success", "on_failure"))
        node = self._action(node_id, inner, when=None, else_=None)
        draft.nodes[node_id] = node
        draft.numbers[dnis] = node_id
        draft.roots.append(node_id)
