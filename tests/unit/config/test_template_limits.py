"""Admin templates cannot exhaust the controller: refused at load time, or stopped while rendering."""

from __future__ import annotations

import time

import pytest

from ivr.config.errors import TemplateFailed
from ivr.config.template_limits import MAX_OUTPUT, MAX_TEXT
from ivr.config.templates import Expression, TemplateCompileError, TextTemplate

CONTEXT = {"customer": {"name": "Anna", "balance": 150}, "caller": {"number": "+79991234567"}}

#: Constant expressions that would build gigabytes: refused when the menu is loaded.
REFUSED_AT_LOAD = [
    "{{ 'x' * 10**9 }}",
    "{{ ['a'] * 100000000 }}",
    "{{ 10 ** 100000 }}",
    "{{ 'x'|center(1000000000) }}",
    "{{ 'x'|indent(1000000000) }}",
    "{{ '%1000000000s'|format('x') }}",
    "{{ '%1000000000s' % 'x' }}",
    "{{ 'x' * 5000 ~ 'y' * 5001 }}",
    "{{ ('x' * 9000) + ('y' * 9000) }}",
    "{{ [1]|batch(1000000000, 'x')|list }}",
]

#: Expressions over call data that would blow up: stopped during the render.
STOPPED_AT_RENDER = [
    ("{{ customer.name * 1000000 }}", "'*'"),
    ("{{ customer.name.center(1000000000) }}", "center()"),
    ("{{ '{:>999999999}'.format(customer.name) }}", "format()"),
    ("{{ '{:>{}}'.format('x', 999999999) }}", "format()"),
    ("{{ customer.name|replace('n', 'x' * 9000) }}", "replace"),
    ("{% for a in caller.number * 100 %}{% for b in caller.number * 100 %}{% endfor %}{% endfor %}", "loops"),
    ("{% for a in caller.number * 100 %}{{ caller.number * 100 }}{% endfor %}", "text passed"),
    ("{% set a = customer.name * 2000 %}{% set a = a ~ a ~ a %}{{ a }}", "'~'"),
    ("{% macro f(n) %}{% for i in 'ab' %}{{ f(n) }}{% endfor %}{% endmacro %}{{ f(1) }}", ""),
]

#: Ordinary templates keep working exactly as before.
STILL_FINE = [
    ("Hello, {{ customer.name }}!", "Hello, Anna!"),
    ("{{ customer.balance * 2 }}", "300"),
    ("{{ customer.balance + 1 }}", "151"),
    ("{{ '%05d'|format(customer.balance) }}", "00150"),
    ("{{ '%.2f' % 1.5 }}", "1.50"),
    ("{{ '-' * 3 }}{{ customer.name ~ '!' }}", "---Anna!"),
    ("{% for c in customer.name %}{{ c }}.{% endfor %}", "A.n.n.a."),
    ("{{ customer.name|center(8) }}", "  Anna  "),
    ("{{ '{:>6}'.format(customer.name) }}", "  Anna"),
    ("{{ 2 ** 10 }}", "1024"),
]


@pytest.mark.parametrize("source", REFUSED_AT_LOAD)
def test_a_constant_that_would_build_gigabytes_is_refused_at_load_time_quickly(source):
    started = time.monotonic()
    with pytest.raises(TemplateCompileError) as caught:
        TextTemplate(source, "greeting.prompt")
    assert time.monotonic() - started < 5, "refusing must not build the value first"
    assert str(MAX_TEXT) in caught.value.message and caught.value.lineno == 1


@pytest.mark.parametrize(("source", "named"), STOPPED_AT_RENDER)
def test_a_template_that_would_grow_on_call_data_is_stopped_with_a_clear_error(source, named):
    template = TextTemplate(source, "greeting.prompt")
    with pytest.raises(TemplateFailed) as caught:
        template.render(CONTEXT)
    assert caught.value.node == "greeting"
    assert named in str(caught.value)


@pytest.mark.parametrize(("source", "expected"), STILL_FINE)
def test_ordinary_templates_render_as_before(source, expected):
    assert TextTemplate(source, "greeting.prompt").render(CONTEXT) == expected


def test_a_render_may_produce_at_most_the_output_limit():
    just_under = "{% for i in caller.number * 100 %}{{ 'x' * 7 }}{% endfor %}"  # 1,200 turns, 8,400 characters
    assert len(TextTemplate(just_under, "n.prompt").render(CONTEXT)) == 8400 <= MAX_OUTPUT
    with pytest.raises(TemplateFailed, match="text passed"):
        TextTemplate(just_under.replace("* 7", "* 9"), "n.prompt").render(CONTEXT)


def test_a_condition_is_bounded_like_a_prompt():
    with pytest.raises(TemplateFailed, match="'\\*'"):
        Expression("(customer.name * 1000000)|length > 3", "menu.when").test(CONTEXT)
    assert Expression("customer.balance * 2 > 100", "menu.when").test(CONTEXT) is True


def test_each_render_gets_a_fresh_loop_budget():
    template = TextTemplate("{% for i in caller.number * 500 %}{% endfor %}ok", "n.prompt")  # 6,000 turns
    assert [template.render(CONTEXT) for _ in range(3)] == ["ok", "ok", "ok"]
