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

from ivr.config.problems import Problem, type_name
from ivr.config.reader import ConfigReader
from ivr.config.source import YMap, parse_yaml, read_yaml_mapping
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
    by_id_url: str | None = None  # GET; the customer by CRM id, for the agent's page (404 = unknown)
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
    """Read and check a CRM mapping file; :class:`CrmConfigError` lists every problem as path:line:col."""
    problems: list[Problem] = []
    data = read_yaml_mapping(path, problems)
    return _checked(None if data is None else _HttpReader(problems).root(data), problems)


def parse_http_config(raw: Any, name: str = "crm http config") -> HttpCrmConfig:
    """The same checks for an already-parsed mapping (tests, a config assembled in code)."""
    problems: list[Problem] = []
    data = parse_yaml(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), name, problems)
    if not isinstance(data, YMap):
        problems.append(Problem(name, 1, 1, f"expected a mapping at the top level, got {type_name(raw)}"))
        return _checked(None, problems)
    return _checked(_HttpReader(problems).root(data), problems)


def _checked(config: HttpCrmConfig | None, problems: list[Problem]) -> HttpCrmConfig:
    if problems or config is None:
        listed = "\n".join(str(p) for p in problems) or "no configuration"
        raise CrmConfigError(f"the CRM HTTP mapping has {len(problems)} problem(s):\n{listed}",
                             hint="see config/crm/http.example.yaml")
    return config


ID_PLACEHOLDERS = frozenset({"customer_id"})
TOP_FIELDS = frozenset({"base_url", "token_env", "headers", "timeout_s", "max_body_bytes", "by_number", "by_id",
                        "by_account",
                        "action", "fields"})
FIELD_SPEC_FIELDS = frozenset({"path", "map", "default", "key", "enabled"})


class _HttpReader(ConfigReader):
    def root(self, raw: YMap) -> HttpCrmConfig | None:
        self.fields(raw, TOP_FIELDS, ("base_url", "by_number", "fields"), "the CRM HTTP mapping")
        base_url = self.text(raw, "base_url", "") or ""
        if base_url and not base_url.startswith(("http://", "https://")):
            self.problem(raw.value_loc("base_url"), f"base_url {base_url!r} must start with http:// or https://")
        by_number = self.section(raw, "by_number", "the CRM HTTP mapping", allowed={"url", "record"})
        by_account = self.section(raw, "by_account", "the CRM HTTP mapping", allowed={"url", "record"})
        by_id = self.section(raw, "by_id", "the CRM HTTP mapping", allowed={"url"})
        action = self.section(raw, "action", "the CRM HTTP mapping", allowed={"url", "ok", "data", "error"})
        headers = self.headers(raw)
        timeout_s = self.number(raw, "timeout_s", DEFAULT_TIMEOUT_S, 0.001, 600)
        max_body = self.whole(raw, "max_body_bytes", DEFAULT_MAX_BODY_BYTES, 1024, 64 << 20)
        token_env = self.text(raw, "token_env", "", allow_empty=True) or None
        by_number_url = self.url(by_number, "by_number", NUMBER_PLACEHOLDERS)
        fields = self.mapping_fields(raw)
        by_account_url = self.url(by_account, "by_account", ACCOUNT_PLACEHOLDERS)
        by_id_url = self.url(by_id, "by_id", ID_PLACEHOLDERS)
        action_url = self.url(action, "action", ACTION_PLACEHOLDERS)
        if self.problems or by_number_url is None or fields is None:
            return None
        return HttpCrmConfig(
            base_url=base_url.rstrip("/"),
            by_number_url=by_number_url,
            record_path=self.path(by_number, "record", ""),
            by_account_url=by_account_url,
            by_id_url=by_id_url,
            account_record_path=self.path(by_account, "record", ""),
            action_url=action_url,
            action_ok_path=self.path(action, "ok", "ok"),
            action_data_path=self.path(action, "data", "data"),
            action_error_path=self.path(action, "error", "error"),
            token_env=token_env,
            headers=MappingProxyType(headers),
            timeout_s=timeout_s,
            max_body_bytes=max_body,
            fields=MappingProxyType(fields),
        )

    def headers(self, raw: YMap) -> dict[str, str]:
        value = raw.get("headers")
        if value is None:
            return {}
        if not isinstance(value, YMap) or not all(isinstance(v, str) for v in value.values()):
            self.problem(raw.value_loc("headers"), "headers must map header names to text")
            return {}
        return {str(k): v for k, v in value.items()}

    def url(self, section: YMap | None, where: str, allowed: frozenset[str]) -> str | None:
        if section is None:
            return None
        url = self.text(section, "url")
        if url is None:
            return None
        loc = section.value_loc("url")
        try:
            used = {name for _, name, _, _ in string.Formatter().parse(url) if name is not None}
        except ValueError as exc:
            self.problem(loc, f"{where}.url {url!r}: {exc}")
            return None
        unknown = sorted(used - allowed)
        if unknown:
            self.problem(loc, f"{where}.url: unknown placeholder {{{unknown[0]}}} "
                              f"(allowed: {', '.join('{' + p + '}' for p in sorted(allowed))})")
            return None
        if not url.startswith("/"):
            self.problem(loc, f"{where}.url {url!r} must be a path starting with / (base_url holds the host)")
            return None
        return url

    def path(self, section: YMap | None, key: str, default: str) -> str:
        if section is None or section.get(key) is None:
            return default
        value = section[key]
        if not isinstance(value, str):
            self.problem(section.value_loc(key), f"'{key}': expected a dotted path like `data.contact`")
            return default
        return value

    def mapping_fields(self, raw: YMap) -> dict[str, FieldSpec] | None:
        value = raw.get("fields")
        if not isinstance(value, YMap) or not value:
            if "fields" in raw:
                self.problem(raw.value_loc("fields"), "fields must map Customer fields to paths in the CRM's record")
            return None
        specs: dict[str, FieldSpec] = {}
        for name, spec in value.items():
            if name not in FIELDS:
                self.problem(value.key_loc(name), f"fields.{name}: not a Customer field "
                                                  f"(known: {', '.join(sorted(FIELDS))})")
                continue
            if isinstance(spec, str):
                specs[name] = FieldSpec(spec)
                continue
            if not isinstance(spec, YMap):
                self.problem(value.value_loc(name), f"fields.{name}: expected a path or a mapping with `path`")
                continue
            self.fields(spec, FIELD_SPEC_FIELDS, ("path",), f"fields.{name}")
            value_map = spec.get("map")
            if value_map is not None and not isinstance(value_map, YMap):
                self.problem(spec.value_loc("map"), f"fields.{name}.map: expected a mapping of CRM values to ours")
                continue
            if (spec.get("key") or spec.get("enabled")) and name != "services":
                self.problem(spec.loc, f"fields.{name}: `key` and `enabled` are for services only")
                continue
            path = self.text(spec, "path")
            if path is None:
                continue
            specs[name] = FieldSpec(path=path, map=None if value_map is None else MappingProxyType(dict(value_map)),
                                    default=spec.get("default"), key=spec.get("key"), enabled=spec.get("enabled"))
        missing = [name for name in REQUIRED if name not in specs and name not in value]
        if missing:
            self.problem(value.loc, f"fields: {', '.join(missing)} must be mapped (every customer has them)")
        return specs
