"""How to talk to a real CRM over HTTP: URL templates and the field mapping, from YAML.

Every CRM names things its own way (``first_name``, ``tier: GOLD``, products as a list
of objects), so the adapter is driven by configuration rather than code: each
:class:`Customer` field names a dotted path in the CRM's JSON and, optionally, a
value map. Everything is checked when the file is loaded (unknown fields, unknown
URL placeholders), never during a call. See ``config/crm/http.example.yaml``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ivr.crm.errors import CrmConfigError
from ivr.crm.fields import FIELDS, REQUIRED

#: Backstop for one HTTP exchange; the lookup's own budget (300 ms) is normally shorter.
DEFAULT_TIMEOUT_S = 2.0
#: A customer record is a few KiB; anything far larger is an error page or an attack.
DEFAULT_MAX_BODY_BYTES = 256 * 1024

#: Placeholders each URL template may use (values are percent-encoded when filled in).
NUMBER_PLACEHOLDERS = frozenset({"number", "digits"})  # +79991234567 / 79991234567
ACCOUNT_PLACEHOLDERS = frozenset({"account"})
ACTION_PLACEHOLDERS = frozenset({"customer_id", "name"})

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class FieldSpec:
    """Where one Customer field sits in the CRM's record, and how its values translate.

    ``map`` translates CRM values (``RUS`` -> ``ru``); a value missing from the map,
    or a missing or null path, takes ``default`` (no default: missing is left out,
    an unmapped value is an error). ``key``/``enabled`` are for ``services`` sent as a
    list of objects: the code field and the on/off field of each.
    """

    path: str
    map: Mapping[Any, Any] | None = None
    default: Any = None
    key: str | None = None
    enabled: str | None = None


@dataclass(frozen=True)
class HttpCrmConfig:
    base_url: str
    by_number_url: str  # GET; 404 or a missing record means "not a customer"
    fields: Mapping[str, FieldSpec]
    record_path: str = ""  # where the customer record sits in a lookup reply; "" = the whole body
    by_account_url: str | None = None  # POST {"account", "pin"}; 404 = no such account or wrong PIN
    account_record_path: str = ""
    action_url: str | None = None  # POST {"args": {...}} with an Idempotency-Key header
    action_ok_path: str = "ok"
    action_data_path: str = "data"
    action_error_path: str = "error"
    token_env: str | None = None  # the bearer token is read from this variable by the composition root
    headers: Mapping[str, str] = field(default_factory=lambda: _NO_HEADERS)
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def load_http_config(path: Path) -> HttpCrmConfig:
    """Read and check a CRM mapping file; every problem is a CrmConfigError naming the key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CrmConfigError(f"{path}: cannot read CRM config: {exc}") from exc
    try:
        return parse_http_config(raw)
    except CrmConfigError as exc:
        raise CrmConfigError(f"{path}: {exc.message}", hint=exc.hint) from exc


def parse_http_config(raw: Any) -> HttpCrmConfig:
    if not isinstance(raw, Mapping):
        raise CrmConfigError("expected a mapping at the top level")
    known = {"base_url", "token_env", "headers", "timeout_s", "max_body_bytes", "by_number", "by_account",
             "action", "fields"}
    _no_unknown_keys("top level", raw, known)
    base_url = _text(raw, "base_url", "top level")
    if not base_url.startswith(("http://", "https://")):
        raise CrmConfigError(f"base_url {base_url!r} must start with http:// or https://")

    by_number = _section(raw, "by_number", {"url", "record"}, required=True)
    by_account = _section(raw, "by_account", {"url", "record"}, required=False)
    action = _section(raw, "action", {"url", "ok", "data", "error"}, required=False)
    headers = raw.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise CrmConfigError("headers must map header names to text")
    timeout_s = raw.get("timeout_s", DEFAULT_TIMEOUT_S)
    max_body = raw.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    if not isinstance(timeout_s, int | float) or isinstance(timeout_s, bool) or timeout_s <= 0:
        raise CrmConfigError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}")
    if not isinstance(max_body, int) or isinstance(max_body, bool) or max_body < 1024:
        raise CrmConfigError(f"max_body_bytes must be a whole number of at least 1024, not {max_body!r}")
    token_env = raw.get("token_env")
    if token_env is not None and not isinstance(token_env, str):
        raise CrmConfigError("token_env must be the name of an environment variable")

    return HttpCrmConfig(
        base_url=base_url.rstrip("/"),
        by_number_url=_template(by_number, "by_number", NUMBER_PLACEHOLDERS),
        record_path=_path(by_number, "record", "by_number"),
        by_account_url=_template(by_account, "by_account", ACCOUNT_PLACEHOLDERS) if by_account else None,
        account_record_path=_path(by_account, "record", "by_account") if by_account else "",
        action_url=_template(action, "action", ACTION_PLACEHOLDERS) if action else None,
        action_ok_path=_path(action, "ok", "action", "ok"),
        action_data_path=_path(action, "data", "action", "data"),
        action_error_path=_path(action, "error", "action", "error"),
        token_env=token_env,
        headers=MappingProxyType(dict(headers)),
        timeout_s=float(timeout_s),
        max_body_bytes=max_body,
        fields=MappingProxyType(_fields(raw.get("fields"))),
    )


def _fields(raw: Any) -> dict[str, FieldSpec]:
    if not isinstance(raw, Mapping) or not raw:
        raise CrmConfigError("fields must map Customer fields to paths in the CRM's record")
    specs: dict[str, FieldSpec] = {}
    for name, spec in raw.items():
        if name not in FIELDS:
            raise CrmConfigError(f"fields.{name}: not a Customer field (known: {', '.join(sorted(FIELDS))})")
        if isinstance(spec, str):
            specs[name] = FieldSpec(spec)
            continue
        if not isinstance(spec, Mapping):
            raise CrmConfigError(f"fields.{name}: expected a path or a mapping with `path`")
        _no_unknown_keys(f"fields.{name}", spec, {"path", "map", "default", "key", "enabled"})
        value_map = spec.get("map")
        if value_map is not None and not isinstance(value_map, Mapping):
            raise CrmConfigError(f"fields.{name}.map: expected a mapping of CRM values to ours")
        if (spec.get("key") or spec.get("enabled")) and name != "services":
            raise CrmConfigError(f"fields.{name}: `key` and `enabled` are for services only")
        specs[name] = FieldSpec(
            path=_text(spec, "path", f"fields.{name}"),
            map=None if value_map is None else MappingProxyType(dict(value_map)),
            default=spec.get("default"),
            key=spec.get("key"),
            enabled=spec.get("enabled"),
        )
    missing = [name for name in REQUIRED if name not in specs]
    if missing:
        raise CrmConfigError(f"fields: {', '.join(missing)} must be mapped (every customer has them)")
    return specs


def _section(raw: Mapping[str, Any], name: str, keys: set[str], *, required: bool) -> Mapping[str, Any] | None:
    section = raw.get(name)
    if section is None:
        if required:
            raise CrmConfigError(f"{name}: missing (needs at least `url`)")
        return None
    if not isinstance(section, Mapping):
        raise CrmConfigError(f"{name}: expected a mapping with `url`")
    _no_unknown_keys(name, section, keys)
    return section


def _template(section: Mapping[str, Any] | None, where: str, allowed: frozenset[str]) -> str:
    assert section is not None
    url = _text(section, "url", where)
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(url) if name is not None}
    except ValueError as exc:
        raise CrmConfigError(f"{where}.url {url!r}: {exc}") from exc
    unknown = sorted(used - allowed)
    if unknown:
        raise CrmConfigError(f"{where}.url: unknown placeholder {{{unknown[0]}}} "
                             f"(allowed: {', '.join('{' + p + '}' for p in sorted(allowed))})")
    if not url.startswith("/"):
        raise CrmConfigError(f"{where}.url {url!r} must be a path starting with / (base_url holds the host)")
    return url


def _path(section: Mapping[str, Any] | None, key: str, where: str, default: str = "") -> str:
    if section is None or section.get(key) is None:
        return default
    value = section[key]
    if not isinstance(value, str):
        raise CrmConfigError(f"{where}.{key}: expected a dotted path like `data.contact`")
    return value


def _text(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise CrmConfigError(f"{where}: `{key}` must be non-empty text")
    return value


def _no_unknown_keys(where: str, raw: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CrmConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
