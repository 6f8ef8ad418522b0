"""Templates: sandboxed, strict, typed where asked, and the same answer on the fast path as in Jinja."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from ivr.config.templates import (
    CONTEXT_NAMES,
    Expression,
    Scope,
    TemplateCompileError,
    TextTemplate,
    ValueTemplate,
    analyse,
)
from ivr.flow.errors import TemplateFailed


def test_sandbox_refuses_python_internals_at_render() -> None:
    with pytest.raises(TemplateFailed) as info:
        TextTemplate("{{ ''.__class__.__mro__ }}", "main.prompt").render({})
    assert isinstance(info.value.cause, SecurityError)


def test_private_attributes_are_found_before_render() -> None:
    assert analyse("{{ ''.__class__.__mro__ }}").private_attributes == ("__mro__", "__class__")


def test_templates_cannot_modify_caller_data() -> None:
    services = ["roaming"]
    with pytest.raises(TemplateFailed) as info:
        TextTemplate("{{ customer.services.append('free_calls') }}", "x").render({"customer": {"services": services}})
    assert isinstance(info.value.cause, SecurityError)
    assert services == ["roaming"]


def test_undefined_names_fail_loudly_instead_of_rendering_empty() -> None:
    with pytest.raises(TemplateFailed) as info:
        TextTemplate("Hello, {{ customer.name }}!", "greeting.prompt").render({"customer": {}})
    assert isinstance(info.value.cause, UndefinedError)
    assert info.value.node == "greeting"


def test_jinja_globals_are_not_available() -> None:
    assert analyse("{{ range(3) }}").names == frozenset({"range"})


def test_context_names_are_the_documented_ones() -> None:
    assert CONTEXT_NAMES == {"customer", "caller", "channel", "dnis", "language", "now", "queue", "queues", "vars",
                             "result"}


def test_output_is_not_html_escaped() -> None:
    assert TextTemplate("{{ customer.name }}", "x").render({"customer": {"name": "Tom & <Jerry>"}}) == "Tom & <Jerry>"


def test_compile_errors_carry_jinja_message() -> None:
    with pytest.raises(TemplateCompileError) as info:
        TextTemplate("{{ customer.name }", "x")
    assert info.value.message == "unexpected '}'"


def test_statements_are_not_expressions() -> None:
    with pytest.raises(TemplateCompileError):
        Expression("x %}{% set y = 1", "x")


def test_single_expression_value_keeps_its_type() -> None:
    value = ValueTemplate("{{ customer.balance }}", "x").evaluate({"customer": {"balance": Decimal("12.50")}})
    assert value == Decimal("12.50") and isinstance(value, Decimal)


def test_mixed_value_renders_to_text() -> None:
    assert ValueTemplate("id-{{ customer.id }}", "x").evaluate({"customer": {"id": 7}}) == "id-7"


def test_constant_value_is_returned_as_is() -> None:
    assert ValueTemplate(42, "x").evaluate({}) == 42


def test_condition_on_a_missing_field_with_is_defined_is_false() -> None:
    assert Expression("customer.name is defined", "x").test({"customer": {}}) is False


def test_condition_on_a_missing_field_without_is_defined_fails() -> None:
    with pytest.raises(TemplateFailed):
        Expression("customer.debt > 0", "x").test({"customer": {}})


CASES: list[tuple[str, dict[str, Any]]] = [
    ("Hi {{ customer.name }}!", {"customer": {"name": "Ann"}}),
    ("Hi {{ customer.name }}!", {"customer": MappingProxyType({"name": None})}),
    ("{{ customer.items }}", {"customer": {"items": 3}}),  # the dict method wins, as in Jinja
    (
        "{{ customer.balance }} {{ caller.number }}",
        {"customer": {"balance": Decimal("1.5")}, "caller": {"number": "+7"}},
    ),
]


@pytest.mark.parametrize(("source", "context"), CASES)
def test_fast_path_renders_exactly_like_jinja(source: str, context: dict[str, Any]) -> None:
    template = TextTemplate(source, "x")
    jinja = template._template
    assert jinja is not None
    assert template.render(context) == jinja.render(context)


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("customer.name is defined", {"customer": {"name": "A"}}, True),
        ("customer.name is not defined", {"customer": {"name": "A"}}, False),
        ("not customer.name is defined", {"customer": {}}, True),
        ("customer.keys is defined", {"customer": {}}, True),  # a method: defined for Jinja too
        ("customer.segment == 'vip'", {"customer": {"segment": "vip"}}, True),
    ],
)
def test_conditions_agree_with_jinja(source: str, context: dict[str, Any], expected: bool) -> None:
    assert Expression(source, "x").test(context) is expected


def test_scope_sees_replaced_variables() -> None:
    scope = Scope({"vars": {}})
    template = TextTemplate("{{ vars.account }}", "x")
    scope["vars"] = {"account": "42"}
    assert template.render(scope) == "42"
