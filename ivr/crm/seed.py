"""The demo data set (``config/crm/demo.yaml``) into a SQLite directory.

Kept apart from the directory so the directory stays a store, and the demo stays
data: a reviewer edits YAML, not code, to add a kind of caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ivr.crm.customer import Customer
from ivr.crm.errors import CrmConfigError
from ivr.crm.fields import FieldError, customer_from_fields
from ivr.crm.numbers import normalise
from ivr.crm.pin import DEFAULT_ITERATIONS, hash_pin
from ivr.crm.sqlite_directory import SqliteDirectory

DEMO_DATA = Path(__file__).resolve().parents[2] / "config" / "crm" / "demo.yaml"


@dataclass(frozen=True)
class DemoRecord:
    customer: Customer
    pin: str | None  # demo PIN in clear, only until it is hashed into the directory


@dataclass(frozen=True)
class DemoData:
    records: tuple[DemoRecord, ...]
    tariffs: tuple[str, ...]
    not_in_data: Mapping[str, str]  # E.164 -> why it is there (documented unknown callers)


def load_demo_data(path: Path = DEMO_DATA) -> DemoData:
    """Read and check the demo file; every problem is a CrmConfigError naming the record."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CrmConfigError(f"{path}: cannot read demo CRM data: {exc}") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("customers"), list):
        raise CrmConfigError(f"{path}: expected a mapping with a `customers` list")
    records = tuple(_record(path, i, item) for i, item in enumerate(raw["customers"]))
    tariffs = raw.get("tariffs") or []
    if not isinstance(tariffs, list) or not all(isinstance(t, str) for t in tariffs):
        raise CrmConfigError(f"{path}: `tariffs` must be a list of names")
    not_in_data = raw.get("not_in_data") or {}
    if not isinstance(not_in_data, Mapping):
        raise CrmConfigError(f"{path}: `not_in_data` must map numbers to why they are listed")
    unknown: dict[str, str] = {}
    for number, why in not_in_data.items():
        e164 = normalise(str(number))
        if e164 is None:
            raise CrmConfigError(f"{path}: not_in_data: {number!r} is not a phone number")
        unknown[e164] = str(why)
    _check_unique(path, records, unknown)
    return DemoData(records, tuple(tariffs), unknown)


def seed_demo(db_path: str | Path, data_path: Path = DEMO_DATA, *,
              pin_iterations: int = DEFAULT_ITERATIONS) -> DemoData:
    """Write the demo customers and tariffs into the SQLite directory at ``db_path``.

    Existing demo records are replaced (a reset); other customers and the applied
    actions are left alone. ``pin_iterations`` is lowered only by tests, for speed.
    """
    data = load_demo_data(data_path)
    directory = SqliteDirectory(db_path)
    try:
        directory.put_tariffs(data.tariffs)
        for record in data.records:
            pin_hash = None if record.pin is None else hash_pin(record.pin, iterations=pin_iterations)
            directory.put_customer(record.customer, pin_hash=pin_hash)
    finally:
        directory.close()
    return data


def _record(path: Path, index: int, item: Any) -> DemoRecord:
    where = f"{path}: customers[{index}]"
    if not isinstance(item, Mapping):
        raise CrmConfigError(f"{where}: expected a mapping")
    fields = dict(item)
    pin = fields.pop("pin", None)
    if pin is not None and (not isinstance(pin, str) or not pin.isdigit()):
        raise CrmConfigError(f"{where} ({fields.get('id')}): pin must be quoted digits, like \"1234\"")
    try:
        customer = customer_from_fields(fields)
    except FieldError as exc:
        raise CrmConfigError(f"{where} ({fields.get('id')}): {exc}") from exc
    return DemoRecord(customer, pin)


def _check_unique(path: Path, records: tuple[DemoRecord, ...], unknown: Mapping[str, str]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for record in records:
        c = record.customer
        for kind, value in (("id", c.id), ("number", c.number), ("account", c.account)):
            if value is None:
                continue
            if (kind, value) in seen:
                raise CrmConfigError(f"{path}: {kind} {value} is used twice ({seen[kind, value]}, {c.id})")
            seen[kind, value] = c.id
        if c.number in unknown:
            raise CrmConfigError(f"{path}: {c.number} is listed in not_in_data but belongs to {c.id}")
