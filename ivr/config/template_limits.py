"""Resource limits for admin templates: no menu file can exhaust the controller.

The sandbox keeps templates away from Python internals, but not away from the CPU and
memory: ``{{ 'x' * 10**9 }}`` built a 1 GB string (Jinja folds constant expressions while
compiling, so even ``ivr validate`` spent 24 s on it), and two nested loops over a long text
run for minutes with no output. A live controller would do that on every call that reaches
the prompt. So every operation that can grow a value is bounded before it runs:

- ``*``, ``**``, ``%`` and ``+`` are intercepted (which also stops Jinja folding them at
  compile time) and refused when their result would pass :data:`MAX_TEXT` characters or
  :data:`MAX_INT_BITS` bits;
- ``~`` (concatenation), the width/count/format parameters of filters and of string
  methods are checked the same way;
- every ``{% for %}`` counts against :data:`MAX_ITERATIONS` per render;
- a render stops at :data:`MAX_OUTPUT` characters or after :data:`RENDER_TIME_S` seconds.

A constant expression that breaks a limit (``'x' * 10**9``) is refused when the menu is
loaded, so ``ivr validate`` names it with file:line; one that depends on call data is
stopped during the render with :class:`TemplateLimit`, which the hosts already treat as a
failed template (the call goes on to the node's fallback, never down).
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.exceptions import TemplateSyntaxError
from jinja2.nodes import Impossible
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: The longest text or list any one operation may build (a spoken prompt is a few hundred).
MAX_TEXT = 10_000
#: The longest text one render may produce.
MAX_OUTPUT = 10_000
#: The size of the largest integer an operation may build (about 1,200 decimal digits).
MAX_INT_BITS = 4_096
#: Loop turns per render, all loops together.
MAX_ITERATIONS = 10_000
#: Wall-clock seconds one render may take.
RENDER_TIME_S = 0.25

_ITERATIONS_FILTER = "ivr_counted"
_CONCAT_FILTER = "ivr_concat"
_PRINTF_SPEC = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*?:[^{}]*?\}")
_DIGITS = re.compile(r"\d+")
_NESTED_SPEC = re.compile(r"\{[^{}]*:[^{}]*\{")
_WIDTH_FILTERS = frozenset({"center", "indent", "batch", "slice", "truncate", "wordwrap"})
_STR_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class TemplateLimit(Exception):
    """A template tried to build more than a menu template may (size, loop turns or time)."""


class _Budget:
    __slots__ = ("turns", "deadline")

    def __init__(self) -> None:
        self.turns = MAX_ITERATIONS
        self.deadline = time.monotonic() + RENDER_TIME_S

    def tick(self, what: str) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimit(f"the template ran longer than {RENDER_TIME_S:g} s ({what})")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("ivr_template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # a render outside bounded_render (a test, a tool): a budget of its own
        budget = _Budget()
        _BUDGET.set(budget)
    return budget


class bounded_render:  # noqa: N801 - used as a context manager, reads as a statement
    """``with bounded_render():`` around one render: a fresh loop and time budget."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _BUDGET.set(_Budget())

    def __exit__(self, *exc: object) -> None:
        _BUDGET.reset(self._token)


def joined_output(chunks: Iterable[str]) -> str:
    """A render's chunks joined, stopped at :data:`MAX_OUTPUT` characters."""
    out: list[str] = []
    size = 0
    budget = _budget()
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise TemplateLimit(f"the template's text passed {MAX_OUTPUT} characters")
        budget.tick("writing its text")
        out.append(chunk)
    return "".join(out)


# -- checks -----------------------------------------------------------------------------

def _size(value: Any) -> int:
    return len(value) if isinstance(value, Sized) and not isinstance(value, dict) else 0


def check_size(value: Any, what: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimit(f"{what} would build a number of more than {MAX_INT_BITS} bits")
    if _size(value) > MAX_TEXT:
        raise TemplateLimit(f"{what} would build more than {MAX_TEXT} characters or items")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_width(value: Any, what: str) -> None:
    if _is_int(value) and value > MAX_TEXT:
        raise TemplateLimit(f"{what}: {value} is more than {MAX_TEXT}")


def check_format(spec: Any, args: Any, what: str) -> None:
    """``%``-style and ``{}``-style format strings may not ask for huge widths."""
    if not isinstance(spec, str):
        return
    for found in _PRINTF_SPEC.finditer(spec):
        for number in found.groups():
            if number and number != "*":
                _check_width(int(number), f"{what} width")
    if "*" in spec:
        for arg in args if isinstance(args, tuple) else (args,):
            _check_width(arg, f"{what} width")
    for brace in _BRACE_SPEC.finditer(spec):
        for number in _DIGITS.findall(brace.group(0).partition(":")[2]):
            _check_width(int(number), f"{what} width")


def _check_replace(text: str, old: Any, new: Any, count: Any = -1) -> None:
    if not (isinstance(old, str) and isinstance(new, str)):
        return
    times = text.count(old) if old else len(text) + 1
    if _is_int(count) and count >= 0:
        times = min(times, count)
    if len(text) + times * (len(new) - len(old)) > MAX_TEXT:
        raise TemplateLimit(f"replace would build more than {MAX_TEXT} characters")


def guarded_binop(operator: str, left: Any, right: Any) -> Any:
    """``left <operator> right`` for the operators that can grow without bound, checked first."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if _is_int(times) and _size(seq):
                if _size(seq) * max(times, 0) > MAX_TEXT:
                    raise TemplateLimit(f"'*' would build more than {MAX_TEXT} characters or items")
        if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"'*' would build a number of more than {MAX_INT_BITS} bits")
        return check_size(left * right, "'*'")
    if operator == "**":
        if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
            if abs(left).bit_length() * right > MAX_INT_BITS:
                raise TemplateLimit(f"'**' would build a number of more than {MAX_INT_BITS} bits")
        elif isinstance(right, (int, float)) and abs(right) > MAX_INT_BITS:
            raise TemplateLimit(f"'**' exponent {right} is more than {MAX_INT_BITS}")
        return check_size(left**right, "'**'")
    if operator == "%":
        check_format(left, right, "'%'")
        return check_size(left % right, "'%'")
    if operator == "+":
        if _size(left) + _size(right) > MAX_TEXT:
            raise TemplateLimit(f"'+' would build more than {MAX_TEXT} characters or items")
        return left + right
    raise AssertionError(operator)


def guarded_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Checks before a method call from a template (``text.center(n)``, ``text.replace(a, b)``)."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, str):
        if name in _STR_WIDTH_METHODS:
            for arg in (*args, *kwargs.values()):
                _check_width(arg, f"{name}()")
            if name == "expandtabs" and args and _is_int(args[0]):
                if owner.count("\t") * args[0] + len(owner) > MAX_TEXT:
                    raise TemplateLimit(f"expandtabs would build more than {MAX_TEXT} characters")
        elif name == "replace" and len(args) >= 2:
            _check_replace(owner, *args[:3])


# -- the filters ------------------------------------------------------------------------

def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = getattr(func, "jinja_pass_arg", None)
    skip = 1 if pass_arg is not None else 0  # the context/eval context/environment argument

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        value, params = (args[skip] if len(args) > skip else None), args[skip + 1:]
        _budget().tick(f"filter {name}")
        if name in _WIDTH_FILTERS:
            for param in (*params, *kwargs.values()):
                _check_width(param, f"filter {name}")
            if name == "indent" and isinstance(value, str):
                width = params[0] if params else kwargs.get("width", 4)
                if _is_int(width) and (value.count("\n") + 1) * width + len(value) > MAX_TEXT:
                    raise TemplateLimit(f"filter indent would build more than {MAX_TEXT} characters")
        elif name == "format":
            check_format(value, tuple(params), "filter format")
        elif name == "replace" and isinstance(value, str) and len(params) >= 2:
            _check_replace(value, *params[:3])
        return check_size(func(*args, **kwargs), f"filter {name}")

    return guarded


@pass_context
def _counted(_context: Context, iterable: Any) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.turns -= 1
        if budget.turns < 0:
            raise TemplateLimit(f"the template's loops turned more than {MAX_ITERATIONS} times")
        budget.tick("in a loop")
        yield item


def _concat(parts: list[Any]) -> str:
    text = "".join(map(str, parts))
    if len(text) > MAX_TEXT:
        raise TemplateLimit(f"'~' would build more than {MAX_TEXT} characters")
    return text


# -- the environment --------------------------------------------------------------------

class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every growing operation bounded (see the module text)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}
        self.filters[_ITERATIONS_FILTER] = _counted
        self.filters[_CONCAT_FILTER] = _concat

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _budget().tick(f"'{operator}'")
        return guarded_binop(operator, left, right)

    def call(self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _budget().tick("a call")
        guarded_call(__obj, args, kwargs)
        return check_size(super().call(__context, __obj, *args, **kwargs), "a call")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``text.format`` and ``text.format_map``: the sandbox wraps both here; widths checked first."""
        owner = getattr(value, "__self__", None)
        wrapped = super().wrap_str_format(value)
        if wrapped is None or not isinstance(owner, str):
            return wrapped
        check_format(owner, (), "format()")
        nested = _NESTED_SPEC.search(owner) is not None  # "{:>{}}": the width is an argument

        def bounded(*args: Any, **kwargs: Any) -> str:
            if nested:
                for arg in (*args, *kwargs.values()):
                    _check_width(arg, "format() width")
            return check_size(wrapped(*args, **kwargs), "format()")

        return bounded

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        _refuse_constant_excess(source, self)
        _bound_loops_and_concatenation(source)
        return super()._generate(source, name, filename, defer_init)


def _bound_loops_and_concatenation(tree: nodes.Template) -> None:
    """Every ``for`` iterates through the turn counter; every ``~`` joins through a checked join."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, _ITERATIONS_FILTER, [], [], None, None, lineno=loop.lineno)
    for parent in tree.find_all(nodes.Node):
        for field in parent.fields:
            value = getattr(parent, field, None)
            if isinstance(value, nodes.Concat):
                setattr(parent, field, _as_filter(value))
            elif isinstance(value, list):
                value[:] = [_as_filter(item) if isinstance(item, nodes.Concat) else item for item in value]


def _as_filter(concat: nodes.Concat) -> nodes.Filter:
    return nodes.Filter(nodes.List(concat.nodes, lineno=concat.lineno), _CONCAT_FILTER, [], [], None, None,
                        lineno=concat.lineno)


def _constant(node: nodes.Node, env: BoundedEnvironment) -> Any:
    """The value of a constant subexpression under the guards (Impossible when it is not one)."""
    if isinstance(node, nodes.BinExpr) and node.operator in env.intercepted_binops:
        return guarded_binop(node.operator, _constant(node.left, env), _constant(node.right, env))
    if isinstance(node, nodes.Concat):
        return _concat([_constant(part, env) for part in node.nodes])
    if isinstance(node, nodes.Filter) and node.name in env.filters and node.node is not None:
        if node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise Impossible()
        func = env.filters[node.name]
        value = _constant(node.node, env)
        args = [_constant(arg, env) for arg in node.args]
        if getattr(func, "jinja_pass_arg", None) is not None:
            raise Impossible()
        return func(value, *args)
    if isinstance(node, (nodes.Expr,)):
        return node.as_const(nodes.EvalContext(env))
    raise Impossible()


def _refuse_constant_excess(tree: nodes.Template, env: BoundedEnvironment) -> None:
    """Refuse, at load time, a constant expression that breaks a limit (``'x' * 10**9``)."""
    for node in tree.find_all((nodes.BinExpr, nodes.Concat, nodes.Filter)):
        try:
            _constant(node, env)
        except TemplateLimit as exc:
            raise TemplateSyntaxError(f"{exc} (a menu template may build at most {MAX_TEXT} characters)",
                                      node.lineno) from None
        except Exception:  # not constant, or an error the render will report in its own words
            continue


__all__ = ["MAX_ITERATIONS", "MAX_OUTPUT", "MAX_TEXT", "RENDER_TIME_S", "BoundedEnvironment", "TemplateLimit",
           "bounded_render", "joined_output"]
