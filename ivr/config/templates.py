"""Sandboxed Jinja2 templates for prompts, reasons, conditions and action args.

Menu files are written by people who are not programmers and sometimes by
tools; a template must not reach Python internals or change the caller's data,
so every template runs in Jinja2's immutable sandbox. Undefined names fail
loudly (StrictUndefined) instead of saying "Hello ," to a caller, and the
validator finds them at load time by comparing each template's free names with
the documented context (:data:`CONTEXT_NAMES`).

Templates see exactly the call context and no Jinja globals. A session keeps
one :class:`Scope`: its names, one Jinja runtime context reused by every render
(no per-render copy), and the results of conditions that depend only on what
cannot change during a call, so a menu's ``when:`` options cost one evaluation
per call rather than one per visit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from jinja2 import StrictUndefined, meta, nodes
from jinja2.environment import Template
from jinja2.exceptions import TemplateSyntaxError
from jinja2.runtime import Context, new_context

from ivr.config.errors import TemplateFailed
from ivr.config.template_limits import BoundedEnvironment, bounded_render, joined_output

#: The names a template may use. Documented in docs/menus.md ("Template context").
CONTEXT_NAMES = frozenset({"customer", "caller", "channel", "dnis", "language", "now", "queue", "queues", "vars",
                           "result"})
#: The names fixed for the whole call (the host passes them in at the start).
STABLE_NAMES = frozenset({"customer", "caller", "channel", "dnis", "language", "now", "queue", "queues"})

_MARKERS = ("{{", "{%", "{#")
_SINGLE_EXPR = re.compile(r"\A\s*\{\{(?P<expr>.*)\}\}\s*\Z", re.DOTALL)
_RESULT = "result_"


def make_environment() -> BoundedEnvironment:
    """The one environment every template of a tree is compiled in.

    Immutable sandbox: no attribute starting with ``_``, no ``str.format`` tricks,
    and no method that mutates a list or dict (CRM data must stay as the host gave it).
    Bounded (:mod:`ivr.config.template_limits`): no operation, loop or render may grow
    past the size and time limits, and a constant that would is refused at load time.
    Autoescape is off because the output is speech and plain text, not HTML.
    """
    env = BoundedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.globals.clear()  # templates see the call context only
    return env


_ENV = make_environment()


class Scope:
    """What templates see during one call; the engine owns one per session.

    ``data`` is read live by every render, so replacing ``vars`` or ``result``
    is seen at once. Conditions over :data:`STABLE_NAMES` only are cached.
    """

    __slots__ = ("data", "_jinja", "_memo")

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self._jinja: Context | None = None
        self._memo: dict[Expression, Any] | None = None

    def jinja(self) -> Context:
        ctx = self._jinja
        if ctx is None:
            ctx = self._jinja = new_context(_ENV, None, {}, self.data, True)
        return ctx

    def __getitem__(self, name: str) -> Any:
        return self.data[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.data[name] = value
        if name in STABLE_NAMES:
            self._memo = None  # a "stable" name changed (the customer after an action): recompute


def as_scope(context: Scope | Mapping[str, Any]) -> Scope:
    return context if isinstance(context, Scope) else Scope(dict(context))


class TemplateCompileError(Exception):
    """A template is not valid Jinja2; ``message`` is Jinja's own words."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """What a template refers to, for load-time checks."""

    names: frozenset[str]
    private_attributes: tuple[str, ...]
    var_refs: frozenset[str]


def has_template_syntax(text: str) -> bool:
    return any(marker in text for marker in _MARKERS)


def analyse(source: str) -> TemplateInfo:
    """Free names, private attribute uses and ``vars.X`` references of a template."""
    try:
        ast = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateCompileError(exc.message or str(exc), exc.lineno) from None
    names = frozenset(meta.find_undeclared_variables(ast))
    private: list[str] = []
    var_refs: set[str] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        attr: object
        if isinstance(node, nodes.Getattr):
            attr, target = node.attr, node.node
        elif isinstance(node, nodes.Getitem):
            attr = node.arg.value if isinstance(node.arg, nodes.Const) else None
            target = node.node
        else:
            continue
        if isinstance(attr, str):
            if attr.startswith("_"):
                private.append(attr)
            if isinstance(target, nodes.Name) and target.name == "vars":
                var_refs.add(attr)
    return TemplateInfo(names, tuple(dict.fromkeys(private)), frozenset(var_refs))


def _compile(source: str) -> Template:
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateCompileError(exc.message or str(exc), exc.lineno) from None
    except Exception as exc:  # Jinja can raise other errors on odd input; it is still a compile error
        raise TemplateCompileError(str(exc)) from None


# -- fast path ------------------------------------------------------------------------
# Most templates are text around plain lookups ("Hello, {{ customer.name }}!") and most
# conditions test one field ("customer.name is defined"). For those, looking the path up
# in the context's dicts directly gives Jinja's exact result several times faster; any
# case the shortcut is not sure about (an object, a missing key, a name that is also a
# method) goes through Jinja, which also produces the proper error.

Path = tuple[str, ...]
_UNSURE = object()  # let Jinja decide
_ABSENT = object()  # a key missing from a plain mapping: Jinja's "undefined"
_PLAIN_MAPPINGS = (dict, MappingProxyType)


def _path_of(node: nodes.Node) -> Path | None:
    attrs: list[str] = []
    while isinstance(node, nodes.Getattr):
        if node.attr.startswith("_"):
            return None
        attrs.append(node.attr)
        node = node.node
    if not isinstance(node, nodes.Name) or node.ctx != "load":
        return None
    return (node.name, *reversed(attrs))


def _lookup(data: Mapping[str, Any], path: Path) -> Any:
    value = data.get(path[0], _ABSENT)
    if value is _ABSENT:
        return _UNSURE  # an unknown top-level name: Jinja raises the right error
    for attr in path[1:]:
        if type(value) not in _PLAIN_MAPPINGS or hasattr(value, attr):
            return _UNSURE
        value = value.get(attr, _ABSENT)
        if value is _ABSENT:
            return _ABSENT
    return value


def _text_plan(source: str) -> tuple[str | Path, ...] | None:
    """Literal text and lookup paths, when the template is nothing more than that."""
    body = _ENV.parse(source).body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    plan: list[str | Path] = []
    for node in body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            plan.append(node.data)
        else:
            path = _path_of(node)
            if path is None:
                return None
            plan.append(path)
    return tuple(plan)


def _expression_plan(source: str) -> tuple[str, Path] | None:
    """("value" | "defined" | "undefined", path) for the simplest expressions."""
    node = _ENV.parse("{{ " + source + " }}").body[0]
    if not isinstance(node, nodes.Output) or len(node.nodes) != 1:
        return None
    expr = node.nodes[0]
    mode = "value"
    if isinstance(expr, nodes.Not) and isinstance(expr.node, nodes.Test):
        expr, mode = expr.node, "undefined"
    if isinstance(expr, nodes.Test):
        if expr.name != "defined" or expr.args or expr.kwargs or expr.dyn_args or expr.dyn_kwargs:
            return None
        expr, mode = expr.node, ("defined" if mode == "value" else "undefined")
    path = _path_of(expr)
    return None if path is None else (mode, path)


class TextTemplate:
    """A text that may hold ``{{ ... }}``; plain text skips Jinja entirely."""

    __slots__ = ("source", "where", "_const", "_template", "_plan")

    def __init__(self, source: str, where: str) -> None:
        self.source = source
        self.where = where
        self._plan: tuple[str | Path, ...] | None = None
        if has_template_syntax(source):
            self._const: str | None = None
            self._template: Template | None = _compile(source)
            self._plan = _text_plan(source)
        else:
            self._const = source
            self._template = None

    @property
    def is_static(self) -> bool:
        return self._const is not None

    def render(self, context: Scope | Mapping[str, Any]) -> str:
        if self._const is not None:
            return self._const
        scope = as_scope(context)
        if self._plan is not None:
            out: list[str] = []
            for item in self._plan:
                if type(item) is str:
                    out.append(item)
                    continue
                value = _lookup(scope.data, item)  # type: ignore[arg-type]
                if value is _UNSURE or value is _ABSENT:
                    break
                out.append(str(value))
            else:
                return "".join(out)
        template = self._template
        assert template is not None
        try:
            with bounded_render():
                return joined_output(template.root_render_func(scope.jinja()))
        except Exception as exc:
            raise TemplateFailed(self.where, self.source, exc) from exc

    def __repr__(self) -> str:
        return f"TextTemplate({self.source!r})"


class Expression:
    """A Jinja2 expression (``when:`` conditions, single-expression values) kept typed."""

    __slots__ = ("source", "where", "stable", "_template", "_plan")

    def __init__(self, source: str, where: str) -> None:
        self.source = source
        self.where = where
        try:
            _ENV.compile_expression(source, undefined_to_none=False)  # rejects statements
        except TemplateSyntaxError as exc:
            raise TemplateCompileError(exc.message or str(exc), exc.lineno) from None
        except Exception as exc:
            raise TemplateCompileError(str(exc)) from None
        # Same code as compile_expression builds, but run in the session's reused context.
        self._template = _compile(f"{{% set {_RESULT} = ({source}) %}}")
        try:
            names = analyse("{{ " + source + " }}").names
            self._plan = _expression_plan(source)
        except (TemplateCompileError, TemplateSyntaxError):
            names = CONTEXT_NAMES
            self._plan = None
        self.stable = names <= STABLE_NAMES

    def evaluate(self, context: Scope | Mapping[str, Any]) -> Any:
        scope = as_scope(context)
        plan = self._plan
        if plan is not None:
            value = _lookup(scope.data, plan[1])
            if value is not _UNSURE:
                if plan[0] == "defined":
                    return value is not _ABSENT
                if plan[0] == "undefined":
                    return value is _ABSENT
                if value is not _ABSENT:
                    return value
        try:
            ctx = scope.jinja()
            with bounded_render():
                for _ in self._template.root_render_func(ctx):
                    pass
            return ctx.vars.pop(_RESULT)
        except Exception as exc:
            raise TemplateFailed(self.where, self.source, exc) from exc

    def test(self, context: Scope | Mapping[str, Any]) -> bool:
        """The condition's truth; cached per call when it reads only stable names."""
        scope = as_scope(context)
        memo = None
        if self.stable:
            memo = scope._memo
            if memo is None:
                memo = scope._memo = {}
            elif self in memo:
                return bool(memo[self])
        value = self.evaluate(scope)
        try:
            result = bool(value)
        except Exception as exc:  # StrictUndefined refuses bool()
            raise TemplateFailed(self.where, self.source, exc) from exc
        if memo is not None:
            memo[self] = result
        return result

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


class ValueTemplate:
    """An action argument or typed prompt value: a constant, one expression, or text.

    ``"{{ customer.balance }}"`` evaluates to the CRM's own value (a Decimal stays
    a Decimal); anything else with template syntax renders to a string.
    """

    __slots__ = ("source", "_const", "_expr", "_text")

    def __init__(self, value: Any, where: str) -> None:
        self.source = value if isinstance(value, str) else repr(value)
        self._const: Any = value
        self._expr: Expression | None = None
        self._text: TextTemplate | None = None
        if isinstance(value, str) and has_template_syntax(value):
            match = _SINGLE_EXPR.match(value)
            inner = match.group("expr") if match else None
            if inner is not None and not any(m in inner for m in ("{{", "}}", "{%", "%}")):
                self._expr = Expression(inner.strip(), where)
            else:
                self._text = TextTemplate(value, where)

    @property
    def is_static(self) -> bool:
        return self._expr is None and self._text is None

    def evaluate(self, context: Scope | Mapping[str, Any]) -> Any:
        if self._expr is not None:
            value = self._expr.evaluate(context)
            if isinstance(value, StrictUndefined):
                # Touching it raises the UndefinedError with Jinja's message.
                try:
                    str(value)
                except Exception as exc:
                    raise TemplateFailed(self._expr.where, self._expr.source, exc) from exc
            return value
        if self._text is not None:
            return self._text.render(context)
        return self._const

    def __repr__(self) -> str:
        return f"ValueTemplate({self.source!r})"
