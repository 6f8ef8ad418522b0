"""Actions an admin declares in YAML, each backed by an HTTP service (``config/actions.yaml``).

An operator's "order status", "block my card" or "book a visit" lives in their own
systems. Rather than Python per action, the file names the *service* (base URL, timeout,
headers, secrets by environment variable) and each *action* on it: method, path template,
typed arguments, which reply fields become ``result.*``, what a refusal looks like, and
whether a retry is safe. Everything is checked when the file is read, with file:line, so
a tree that calls an action wrongly is refused by ``ivr validate`` and never reaches a
call. The runner is :mod:`ivr.crm.declared_http`; the format is in docs/integrations.md.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ivr.config.problems import Problem, ProblemsFound, did_you_mean, type_name
from ivr.config.reader import ConfigReader
from ivr.config.source import YList, YMap, read_yaml_mapping
from ivr.flow.action_signature import ARG_TYPES, MAX_TEXT_CHARS, TEXT, ActionSignature, ArgSpec

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Placeholders a path may use besides the action's own arguments.
CONTEXT_PLACEHOLDERS = frozenset({"customer_id", "number"})
DEFAULT_TIMEOUT_MS = 2000
DEFAULT_MAX_BODY_BYTES = 64 * 1024
#: 4xx answers that mean "no" (no such order, already blocked), not "you asked wrongly".
DEFAULT_FAILURE_STATUSES = frozenset({404, 409, 422})
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}")
_ENV = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")

TOP_FIELDS = ("version", "services", "actions")
SERVICE_FIELDS = ("base_url", "base_url_env", "timeout_ms", "headers", "secrets", "max_body_bytes")
SECRET_FIELDS = ("env", "format", "required")
ACTION_FIELDS = ("service", "method", "path", "description", "args", "result", "ok", "failure", "retry_safe",
                 "needs_customer")
ARG_FIELDS = ("type", "required", "min_length", "max_length")
FAILURE_FIELDS = ("statuses", "error")


@dataclass(frozen=True)
class SecretHeader:
    """A header whose value comes from the environment: ``format`` with ``{}`` for the secret."""

    header: str
    env: str
    format: str = "{}"
    required: bool = True


@dataclass(frozen=True)
class HttpService:
    name: str
    base_url: str
    timeout_s: float = DEFAULT_TIMEOUT_MS / 1000
    headers: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[SecretHeader, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    base_url_env: str | None = None


@dataclass(frozen=True)
class DeclaredAction:
    """One named action: how to ask the service and how to read its answer."""

    name: str
    service: HttpService
    method: str
    path: str  # with {arg}, {customer_id}, {number} placeholders, percent-encoded when filled
    signature: ActionSignature
    result: Mapping[str, str]  # result field -> dotted path in the reply
    ok_path: str | None = None  # a true/false field in the reply; absent = any 2xx is success
    failure_statuses: frozenset[int] = DEFAULT_FAILURE_STATUSES
    error_path: str = "error"
    retry_safe: bool = False
    needs_customer: bool = False
    description: str = ""

    @property
    def sends_body(self) -> bool:
        return self.method in BODY_METHODS

    @property
    def path_fields(self) -> frozenset[str]:
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.path) if name)


@dataclass(frozen=True)
class DeclaredActions:
    """Every declared action by name (empty when there is no file)."""

    actions: Mapping[str, DeclaredAction] = field(default_factory=dict)
    source: str = ""

    def signatures(self) -> dict[str, ActionSignature]:
        return {name: action.signature for name, action in self.actions.items()}


def load_declared_actions(path: Path, *, reserved: frozenset[str] = frozenset(),
                          env: Mapping[str, str] | None = None, check_secrets: bool = False) -> DeclaredActions:
    """Read and check ``path``; a missing file declares nothing. ``reserved``: the built-in names.

    ``env`` is where secrets and base-URL overrides are read from (the process environment
    when ``ivr serve`` starts); with ``check_secrets`` a required secret that is not set is a
    problem, so the controller refuses to start rather than send requests a service will
    refuse. ``ivr validate`` runs without it: an admin's workstation holds no production
    secrets (:func:`missing_secrets` lists them as warnings instead).
    Raises :class:`CrmConfigError` listing every problem as path:line:col.
    """
    if not path.exists():
        return DeclaredActions(source=str(path))
    problems: list[Problem] = []
    data = read_yaml_mapping(path, problems)
    actions = None if data is None else _ActionsReader(problems, env, reserved, check_secrets).root(data)
    if problems or actions is None:
        raise ActionsInvalid(path, sorted(set(problems)) or [Problem(str(path), 1, 1, "no actions")])
    return DeclaredActions(MappingProxyType(actions), str(path))


def missing_secrets(declared: DeclaredActions, env: Mapping[str, str]) -> list[str]:
    """A line for each required secret ``env`` does not hold: what ``ivr serve`` would refuse."""
    services = {action.service.name: action.service for action in declared.actions.values()}
    return [f"service '{svc.name}' header {secret.header}: ${secret.env} is not set"
            for svc in services.values() for secret in svc.secrets if secret.required and not env.get(secret.env)]


class ActionsInvalid(ProblemsFound):
    """``config/actions.yaml`` has problems; ``problems`` lists each with file:line for ``ivr validate``."""

    error_id = "actions-invalid"

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        super().__init__(path, problems, hint="see docs/integrations.md, 'Actions an admin declares'")


class _ActionsReader(ConfigReader):
    def __init__(self, problems: list[Problem], env: Mapping[str, str] | None, reserved: frozenset[str],
                 check_secrets: bool) -> None:
        super().__init__(problems, env)
        self.reserved = reserved
        self.check_secrets = check_secrets

    def root(self, raw: YMap) -> dict[str, DeclaredAction] | None:
        self.fields(raw, TOP_FIELDS, ("version", "actions"), "the actions file")
        if "version" in raw and raw["version"] != 1:
            self.problem(raw.value_loc("version"), f"version must be 1, got {raw['version']!r}")
        services = {name: svc for name, svc in self.services(raw).items() if svc is not None}
        section = self.section(raw, "actions", "the actions file", required=True)
        if section is None:
            return None
        out: dict[str, DeclaredAction] = {}
        for name, spec in section.items():
            loc = section.key_loc(name)
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                self.problem(loc, f"action name {name!r} must be lower-case letters, digits and _")
                continue
            if name in self.reserved:
                self.problem(loc, f"'{name}' is a built-in action; choose another name")
                continue
            if not isinstance(spec, YMap):
                self.problem(section.value_loc(name), f"action '{name}' must be a mapping, got {type_name(spec)}")
                continue
            action = self.action(name, spec, services)
            if action is not None:
                out[name] = action
        return out

    # -- services ------------------------------------------------------------------------------

    def services(self, raw: YMap) -> dict[str, HttpService | None]:
        section = self.section(raw, "services", "the actions file")
        if section is None:
            return {}
        out: dict[str, HttpService | None] = {}
        for name, spec in section.items():
            if isinstance(spec, YMap):
                out[str(name)] = self.service(str(name), spec)
            else:
                self.problem(section.value_loc(name), f"service '{name}' must be a mapping")
        return out

    def service(self, name: str, spec: YMap) -> HttpService | None:
        what = f"service '{name}'"
        self.fields(spec, SERVICE_FIELDS, ("base_url",), what)
        base_url = self.text(spec, "base_url", "") or ""
        base_url_env = self.env_name(spec, "base_url_env")
        if base_url_env and self.env.get(base_url_env):
            base_url = self.env[base_url_env]
        if base_url and not base_url.startswith(("http://", "https://")):
            self.problem(spec.value_loc("base_url"), f"{what}: base_url {base_url!r} must start with http:// or https://")
        timeout_ms = self.whole(spec, "timeout_ms", DEFAULT_TIMEOUT_MS, 10, 60_000)
        max_body = self.whole(spec, "max_body_bytes", DEFAULT_MAX_BODY_BYTES, 256, 16 << 20)
        headers = self.headers(spec, what)
        secrets = self.secrets(spec, what)
        if not base_url:
            return None
        return HttpService(name, base_url.rstrip("/"), timeout_ms / 1000, MappingProxyType(headers),
                           tuple(secrets), max_body, base_url_env)

    def headers(self, spec: YMap, what: str) -> dict[str, str]:
        value = spec.get("headers")
        if value is None:
            return {}
        if not isinstance(value, YMap):
            self.problem(spec.value_loc("headers"), f"{what}: headers must map header names to text")
            return {}
        out = {}
        for header, text in value.items():
            if not isinstance(header, str) or not _HEADER.fullmatch(header) or not isinstance(text, str):
                self.problem(value.key_loc(header), f"{what}: header {header!r} must be a name with a text value")
                continue
            if header.lower() in ("authorization", "x-api-key", "cookie") or "token" in header.lower():
                self.problem(value.key_loc(header), f"{what}: header {header!r} looks like a credential: "
                                                    "put it under `secrets` with the variable that holds it")
                continue
            out[header] = text
        return out

    def secrets(self, spec: YMap, what: str) -> list[SecretHeader]:
        value = spec.get("secrets")
        if value is None:
            return []
        if not isinstance(value, YMap):
            self.problem(spec.value_loc("secrets"), f"{what}: secrets must map header names to {{env: VARIABLE}}")
            return []
        out = []
        for header, item in value.items():
            where = f"{what} secret header {header!r}"
            if not isinstance(header, str) or not _HEADER.fullmatch(header):
                self.problem(value.key_loc(header), f"{where}: not a header name")
                continue
            if isinstance(item, str):
                item_map: YMap | None = None
                env_name = item
            elif isinstance(item, YMap):
                item_map = item
                self.fields(item, SECRET_FIELDS, ("env",), where)
                env_name = self.text(item, "env", "") or ""
            else:
                self.problem(value.value_loc(header), f"{where}: expected a variable name or {{env: VARIABLE}}")
                continue
            if not _ENV.fullmatch(env_name):
                self.problem(value.value_loc(header), f"{where}: {env_name!r} is not an environment variable name")
                continue
            fmt = "{}" if item_map is None else self.text(item_map, "format", "{}") or "{}"
            if fmt.count("{}") != 1:
                self.problem(value.value_loc(header), f"{where}: format must hold {{}} once, got {fmt!r}")
                continue
            required = True if item_map is None else self.flag(item_map, "required", True)
            if required and self.check_secrets and not self.env.get(env_name):
                self.problem(value.value_loc(header), f"{where}: ${env_name} is not set (the secret is read from "
                                                      "the environment, never from this file)")
            out.append(SecretHeader(header, env_name, fmt, required))
        return out

    # -- actions -------------------------------------------------------------------------------

    def action(self, name: str, spec: YMap, services: Mapping[str, HttpService]) -> DeclaredAction | None:
        what = f"action '{name}'"
        before = len(self.problems)
        self.fields(spec, ACTION_FIELDS, ("service", "path"), what)
        service_name = self.text(spec, "service", "") or ""
        service = services.get(service_name)
        if service_name and service is None:
            self.problem(spec.value_loc("service"), f"{what}: unknown service '{service_name}'"
                                                    f"{did_you_mean(service_name, services)}")
        method = (self.text(spec, "method", "GET") or "GET").upper()
        if method not in METHODS:
            self.problem(spec.value_loc("method"), f"{what}: method must be one of {', '.join(METHODS)}")
        args = self.args(spec, what)
        path = self.text(spec, "path", "") or ""
        self.check_path(spec, path, {a.name for a in args}, what)
        result = self.result(spec, what)
        failure = self.section(spec, "failure", what, allowed=FAILURE_FIELDS)
        statuses = self.statuses(failure, what)
        error_path = "error" if failure is None else self.text(failure, "error", "error") or "error"
        ok_path = self.text(spec, "ok", "") or None
        description = self.text(spec, "description", "", allow_empty=True) or ""
        retry_safe = self.flag(spec, "retry_safe", method in ("GET", "PUT", "DELETE"))
        needs_customer = self.flag(spec, "needs_customer", False)
        if len(self.problems) != before or service is None:
            return None
        return DeclaredAction(name, service, method, path, ActionSignature(tuple(args), strict=True),
                              MappingProxyType(result), ok_path, statuses, error_path, retry_safe,
                              needs_customer, description)

    def args(self, spec: YMap, what: str) -> list[ArgSpec]:
        value = spec.get("args")
        if value is None:
            return []
        if not isinstance(value, YMap):
            self.problem(spec.value_loc("args"), f"{what}: args must map names to {{type: ...}}")
            return []
        out = []
        for arg, item in value.items():
            where = f"{what} arg '{arg}'"
            if not isinstance(arg, str) or not _NAME.fullmatch(arg) or arg in CONTEXT_PLACEHOLDERS:
                self.problem(value.key_loc(arg), f"{where}: names are lower-case letters, digits and _ "
                                                 f"(not {', '.join(sorted(CONTEXT_PLACEHOLDERS))})")
                continue
            if isinstance(item, str):
                item = _type_only(item, value.value_loc(arg))
            if not isinstance(item, YMap):
                self.problem(value.value_loc(arg), f"{where}: expected a type ({', '.join(ARG_TYPES)}) or a mapping")
                continue
            self.fields(item, ARG_FIELDS, (), where)
            kind = self.text(item, "type", TEXT) or TEXT
            if kind not in ARG_TYPES:
                self.problem(item.value_loc("type"), f"{where}: type must be one of {', '.join(ARG_TYPES)}"
                                                     f"{did_you_mean(kind, ARG_TYPES)}")
                continue
            low = self.whole(item, "min_length", 0, 0, MAX_TEXT_CHARS)
            high = self.whole(item, "max_length", MAX_TEXT_CHARS, 1, MAX_TEXT_CHARS)
            if low > high:
                self.problem(item.loc, f"{where}: min_length {low} is above max_length {high}")
            out.append(ArgSpec(arg, kind, self.flag(item, "required", True), low, high))
        return out

    def check_path(self, spec: YMap, path: str, args: set[str], what: str) -> None:
        if not path:
            return
        loc = spec.value_loc("path")
        if not path.startswith("/"):
            self.problem(loc, f"{what}: path {path!r} must start with / (the service holds the host)")
            return
        try:
            used = {name for _, name, _, _ in string.Formatter().parse(path) if name is not None}
        except ValueError as exc:
            self.problem(loc, f"{what}: path {path!r}: {exc}")
            return
        allowed = args | CONTEXT_PLACEHOLDERS
        for name in sorted(used - allowed):
            self.problem(loc, f"{what}: path uses {{{name}}}, which is not an argument "
                              f"(allowed: {', '.join('{' + a + '}' for a in sorted(allowed))})")

    def result(self, spec: YMap, what: str) -> dict[str, str]:
        value = spec.get("result")
        if value is None:
            return {}
        if not isinstance(value, YMap) or not all(isinstance(v, str) for v in value.values()):
            self.problem(spec.value_loc("result"), f"{what}: result must map result fields to dotted paths "
                                                   "in the reply (eta: delivery.date)")
            return {}
        out = {}
        for key, path in value.items():
            if not isinstance(key, str) or not _NAME.fullmatch(key) or key in ("error", "reason", "http_status"):
                self.problem(value.key_loc(key), f"{what}: result field {key!r} must be a lower-case name "
                                                 "(error, reason and http_status are set by ivr)")
                continue
            out[key] = path
        return out

    def statuses(self, failure: YMap | None, what: str) -> frozenset[int]:
        if failure is None or "statuses" not in failure:
            return DEFAULT_FAILURE_STATUSES
        value = failure["statuses"]
        if not isinstance(value, YList) or not all(isinstance(s, int) and 400 <= s <= 499 for s in value):
            self.problem(failure.value_loc("statuses"), f"{what}: failure.statuses must list 4xx statuses "
                                                        "(5xx, timeouts and network errors always count as down)")
            return DEFAULT_FAILURE_STATUSES
        return frozenset(value)

    def flag(self, m: YMap, key: str, default: bool) -> bool:
        if key not in m:
            return default
        if not isinstance(m[key], bool):
            self.problem(m.value_loc(key), f"'{key}' must be true or false, got {type_name(m[key])}")
            return default
        return bool(m[key])

    def env_name(self, m: YMap, key: str) -> str | None:
        name = self.text(m, key, "", allow_empty=True) or None
        if name is not None and not _ENV.fullmatch(name):
            self.problem(m.value_loc(key), f"'{key}': {name!r} is not an environment variable name")
            return None
        return name


def _type_only(kind: str, loc: Any) -> YMap:
    """``order: digits`` is short for ``order: {type: digits}``."""
    item = YMap(loc)
    item["type"] = kind
    item.value_locs["type"] = loc
    return item
