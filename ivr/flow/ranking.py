"""Options offered in the order that fits this caller: highest ``rank`` first.

A bank puts "block my card" first for a caller whose card was just declined; an operator
puts roaming first for a subscriber abroad. Each option may carry a ``rank`` expression
over the caller's data (``customer.scores.roaming | default(0)``); the menu offers its
visible options by that number, highest first, and equal ranks keep the file's order,
so an option without a rank stays where the admin wrote it among its equals. Keys do not
move with the order: "roaming, press 4" stays 4 wherever it is read out.

A rank that cannot be read as a number (undefined, text, a template error) counts as 0:
the menu must still be offered, and ``ivr validate`` has already checked the syntax.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from ivr.config.templates import Scope, TemplateFailed
from ivr.flow.model import Option


def ranked(options: tuple[Option, ...], ctx: Scope) -> tuple[Option, ...]:
    """``options`` highest rank first; stable for equal ranks."""
    ranks = {o.index: rank_of(o, ctx) for o in options}
    return tuple(sorted(options, key=lambda o: -ranks[o.index]))


def rank_of(option: Option, ctx: Scope) -> float:
    if option.rank is None:
        return 0.0
    try:
        value: Any = option.rank.evaluate(ctx)
    except TemplateFailed:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        return 0.0
    try:
        number = float(value)
    except ValueError:
        return 0.0
    return number if math.isfinite(number) else 0.0
