"""A CRM's JSON record to a :class:`Customer`, following an :class:`HttpCrmConfig` field map.

Kept apart from the HTTP client so the mapping can be tested with plain dicts, and
so "the CRM sent the wrong shape" is reported with the field and the path at fault.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from ivr.crm.customer import Customer
from ivr.crm.errors import CrmBadResponse
from ivr.crm.fields import FieldError, customer_from_fields
from ivr.crm.http_config import FieldSpec


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def dig(data: Any, path: str) -> Any:
    """The value at a dotted path (``data.contacts.0.name``), or MISSING; ``""`` is ``data`` itself."""
    if not path:
        return data
    for part in path.split("."):
        if isinstance(data, Mapping):
            data = data.get(part, MISSING)
        elif isinstance(data, list) and part.isdigit():
            index = int(part)
            data = data[index] if index < len(data) else MISSING
        else:
            return MISSING
        if data is MISSING:
            return MISSING
    return data


def customer_from_record(record: Any, fields: Mapping[str, FieldSpec], *, operation: str) -> Customer:
    """Map one record; any mismatch is a CrmBadResponse naming the field and its path."""
    if not isinstance(record, Mapping):
        raise CrmBadResponse(f"the customer record is {type(record).__name__}, not an object", operation=operation)
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        try:
            value = _field_value(name, spec, dig(record, spec.path))
        except FieldError as exc:
            raise CrmBadResponse(f"{exc} (from {spec.path!r})", operation=operation) from exc
        if value is not MISSING:
            values[name] = value
    try:
        return customer_from_fields(values)
    except FieldError as exc:
        source = fields[exc.field].path if exc.field in fields else "mapping"
        raise CrmBadResponse(f"{exc} (from {source!r})", operation=operation) from exc


def _field_value(name: str, spec: FieldSpec, value: Any) -> Any:
    if value is MISSING or value is None:
        return MISSING if spec.default is None else spec.default
    if spec.map is not None:
        if isinstance(value, Hashable) and value in spec.map:
            return spec.map[value]
        if spec.default is not None:
            return spec.default
        raise FieldError(name, f"{value!r} is not one of {', '.join(map(str, spec.map))}")
    if name == "services" and spec.key is not None:
        return _services_from_objects(spec, value)
    return value


def _services_from_objects(spec: FieldSpec, value: Any) -> dict[str, bool]:
    """``[{"code": "roaming", "active": true}, ...]`` -> ``{"roaming": True}``."""
    if not isinstance(value, list):
        raise FieldError("services", f"expected a list of objects, got {type(value).__name__}")
    services: dict[str, bool] = {}
    for item in value:
        code = dig(item, spec.key or "")
        on = True if spec.enabled is None else dig(item, spec.enabled)
        if not isinstance(code, str) or not isinstance(on, bool):
            raise FieldError("services", f"expected {spec.key!r} text and {spec.enabled!r} true/false in {item!r}")
        services[code] = on
    return services
