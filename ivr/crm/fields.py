"""Plain values (YAML, JSON) to a :class:`Customer`, with an error that names the field.

The demo data file and a real CRM's JSON both arrive as loosely typed values; one
converter keeps their rules identical: money is Decimal (never float arithmetic),
numbers are normalised to E.164, and a value of the wrong kind is an error rather
than a silent ``str()``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ivr.crm.customer import Customer
from ivr.crm.errors import CustomerInvalid
from ivr.crm.numbers import normalise

REQUIRED = ("id", "number", "name")
TEXT = ("name", "language", "segment", "currency", "tariff", "manager", "region", "last_agent", "offer",
        "offer_text")
#: Identifiers some CRMs send as numbers; they are text to us (leading zeros matter).
IDENTIFIERS = ("id", "account")
MONEY = ("balance", "debt")
FIELDS = frozenset(REQUIRED + TEXT + IDENTIFIERS + MONEY + ("overdue_days", "services", "blacklisted",
                                                            "last_contact", "scores"))


class FieldError(ValueError):
    """One field of a record has the wrong kind of value; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def customer_from_fields(values: Mapping[str, Any]) -> Customer:
    """Build a Customer from ``values``; absent or null optional fields take the defaults."""
    unknown = sorted(set(values) - FIELDS)
    if unknown:
        raise FieldError(unknown[0], f"not a customer field (known: {', '.join(sorted(FIELDS))})")
    for name in REQUIRED:
        if values.get(name) in (None, ""):
            raise FieldError(name, "missing")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        kwargs[name] = _convert(name, value)
    try:
        return Customer(**kwargs)
    except CustomerInvalid as exc:
        raise FieldError("record", str(exc)) from exc


def _convert(name: str, value: Any) -> Any:
    if name == "number":
        number = normalise(value) if isinstance(value, str) else None
        if number is None:
            raise FieldError(name, f"{value!r} is not a phone number")
        return number
    if name in IDENTIFIERS:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise FieldError(name, f"expected text, got {type(value).__name__}")
        return str(value)
    if name in TEXT:
        if not isinstance(value, str):
            raise FieldError(name, f"expected text, got {type(value).__name__}")
        return value
    if name in MONEY:
        return _money(name, value)
    if name == "overdue_days":
        days = _money(name, value)
        if days != days.to_integral_value():
            raise FieldError(name, f"{value!r} is not a whole number")
        return int(days)
    if name == "blacklisted":
        if not isinstance(value, bool):
            raise FieldError(name, f"expected true/false, got {type(value).__name__}")
        return value
    if name == "services":
        return _services(value)
    if name == "last_contact":
        return _date(name, value)
    if name == "scores":
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise FieldError(name, "expected topics mapped to numbers")
        return {str(k): _money(f"scores.{k}", v) for k, v in value.items()}
    raise FieldError(name, "no converter")  # FIELDS and this function disagree: a bug


def _money(name: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise FieldError(name, f"expected a number, got {type(value).__name__}")
    try:
        # str() first: Decimal(0.1) would keep the float's binary noise.
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise FieldError(name, f"{value!r} is not a number") from None
    if not amount.is_finite():
        raise FieldError(name, f"{value!r} is not a finite number")
    return amount


def _services(value: Any) -> dict[str, bool]:
    """Either ``{code: on}`` or a list of the codes that are on."""
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) and isinstance(v, bool) for k, v in value.items()):
            raise FieldError("services", "expected service codes mapped to true/false")
        return dict(value)
    if isinstance(value, list):
        if not all(isinstance(code, str) for code in value):
            raise FieldError("services", "expected a list of service codes")
        return dict.fromkeys(value, True)
    raise FieldError("services", f"expected a mapping or a list, got {type(value).__name__}")


def _date(name: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise FieldError(name, f"{value!r} is not an ISO date")
