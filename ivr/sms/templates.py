"""Reply and notification texts: Jinja2 in the same immutable sandbox as the menus.

The texts in ``config/sms.yaml`` are written by people who are not programmers; the
sandbox keeps them away from Python internals and StrictUndefined turns a missing field
into an error instead of "Your balance is ." on a customer's phone. The one addition
to the menus' environment is the ``money`` filter, so an amount reads the same on
SMS as on a USSD screen ("1,250.00 RUB", :func:`ivr.flow.render_text.format_typed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from jinja2 import meta
from jinja2.environment import Template
from jinja2.exceptions import TemplateError

from ivr.config.templates import make_environment
from ivr.flow.actions import Typed
from ivr.flow.render_text import format_typed
from ivr.sms.errors import TemplateFailed

#: What a reply template may refer to (docs/sms.md, "Template context").
CONTEXT_NAMES = frozenset({"customer", "result", "arg", "given", "number", "language", "vars"})


def money(amount: object, currency: object = None) -> str:
    """``1250`` -> ``"1,250.00 RUB"``; an amount that is not a number is shown as it came."""
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return str(amount)
    if not value.is_finite():
        return str(amount)
    return format_typed(Typed("currency", value, str(currency) if currency else None))


_ENV = make_environment()
_ENV.filters["money"] = money


class CompileError(Exception):
    """The text is not a valid template; ``lineno`` is relative to the text."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno


def compile_text(source: str) -> Template:
    """Compile ``source``; unknown names and filters are refused here, not at send time."""
    try:
        ast = _ENV.parse(source)
        unknown = sorted(set(meta.find_undeclared_variables(ast)) - CONTEXT_NAMES)
        if unknown:
            raise CompileError(f"unknown name {unknown[0]!r}; templates see {', '.join(sorted(CONTEXT_NAMES))}")
        return _ENV.from_string(ast)
    except TemplateError as exc:
        raise CompileError(exc.message or str(exc), getattr(exc, "lineno", None)) from None


def render(template: Template, name: str, context: Mapping[str, Any]) -> str:
    """The text for one customer; :class:`TemplateFailed` names the template, never the data."""
    try:
        return template.render(context).strip()
    except Exception as exc:  # StrictUndefined, a filter on the wrong type, a sandbox refusal
        raise TemplateFailed(name, f"{type(exc).__name__}: {exc}") from exc
