"""Who may use the context API, from ``config/context.yaml``: clients that add events, staff who read.

The file names each client (the web site, the app, the help-desk tool) with the channels
it may write and its rate, and each member of staff (a team or a tool) with a role; roles
map to permissions. Keys are never in the file: each entry names the environment variable
that holds its key, and an entry whose variable is unset is off (logged), so a demo
machine runs with the API closed rather than with a guessable key. Checked at load time
with file:line, like every file an admin edits.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ivr.config.problems import Problem, ProblemsFound, did_you_mean, type_name
from ivr.config.reader import ConfigReader
from ivr.config.source import YMap, read_yaml_mapping
from ivr.journey.events import EXTERNAL_CHANNELS

log = logging.getLogger(__name__)

JOURNEY_READ = "journey.read"  # a customer's journey by customer id or number
AUDIT_READ = "audit.read"  # who read which journey
PERMISSIONS = (JOURNEY_READ, AUDIT_READ)
DEFAULT_RATE_PER_MINUTE = 600
MIN_KEY_CHARS = 16  # a shorter key is guessable: refused, named, at start
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_ENV = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")


@dataclass(frozen=True)
class Client:
    """A system that adds events to journeys, signing each request with ``key``."""

    name: str
    key: str
    channels: frozenset[str]
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE


@dataclass(frozen=True)
class Staff:
    """A team or tool that reads journeys; ``permissions`` come from its role."""

    name: str
    key: str
    role: str
    permissions: frozenset[str]


@dataclass(frozen=True)
class ContextAccess:
    """The enabled clients and staff (those whose key variable is set)."""

    clients: Mapping[str, Client] = field(default_factory=dict)
    staff: Mapping[str, Staff] = field(default_factory=dict)
    disabled: tuple[str, ...] = ()  # "client website ($IVR_...)": declared, key not set


class AccessInvalid(ProblemsFound):
    error_id = "context-access-invalid"

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        super().__init__(path, problems, hint="see docs/integrations.md, 'Keys and roles'")


def load_context_access(path: Path, env: Mapping[str, str]) -> ContextAccess:
    """The file at ``path`` with keys from ``env``; a missing file enables nobody."""
    if not path.exists():
        return ContextAccess()
    problems: list[Problem] = []
    data = read_yaml_mapping(path, problems)
    access = None if data is None else _AccessReader(problems, env).root(data)
    if problems or access is None:
        raise AccessInvalid(path, sorted(set(problems)) or [Problem(str(path), 1, 1, "empty file")])
    for what in access.disabled:
        log.info("context API: %s is off: its key variable is not set", what)
    return access


class _AccessReader(ConfigReader):
    def root(self, raw: YMap) -> ContextAccess | None:
        self.fields(raw, ("version", "clients", "roles", "staff"), ("version",), "config/context.yaml")
        if raw.get("version") != 1:
            self.problem(raw.value_loc("version"), "version must be 1")
        disabled: list[str] = []
        clients: dict[str, Client] = {}
        for name, spec in self.entries(raw, "clients"):
            client = self.client(name, spec, disabled)
            if client is not None:
                clients[name] = client
        roles = self.roles(raw)
        staff: dict[str, Staff] = {}
        for name, spec in self.entries(raw, "staff"):
            member = self.staff(name, spec, roles, disabled)
            if member is not None:
                staff[name] = member
        keys = [c.key for c in clients.values()] + [s.key for s in staff.values()]
        if len(keys) != len(set(keys)):
            self.problem(raw.loc, "two entries share one key: give every client and staff entry its own")
        return ContextAccess(MappingProxyType(clients), MappingProxyType(staff), tuple(disabled))

    def entries(self, raw: YMap, section: str) -> list[tuple[str, YMap]]:
        value = self.section(raw, section, "config/context.yaml")
        if value is None:
            return []
        out = []
        for name, spec in value.items():
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                self.problem(value.key_loc(name), f"{section} name {name!r}: lower-case letters, digits, - and _")
            elif not isinstance(spec, YMap):
                self.problem(value.value_loc(name), f"{section} '{name}' must be a mapping, got {type_name(spec)}")
            else:
                out.append((name, spec))
        return out

    def key(self, spec: YMap, what: str, disabled: list[str]) -> str | None:
        env_name = self.text(spec, "key_env", "") or ""
        if not _ENV.fullmatch(env_name):
            self.problem(spec.value_loc("key_env") if "key_env" in spec else spec.loc,
                         f"{what}: key_env must name the environment variable that holds its key")
            return None
        key = self.env.get(env_name, "")
        if not key:
            disabled.append(f"{what} (${env_name})")
            return None
        if len(key) < MIN_KEY_CHARS:
            self.problem(spec.value_loc("key_env"), f"{what}: ${env_name} is shorter than {MIN_KEY_CHARS} "
                                                    "characters; use a random key (openssl rand -hex 32)")
            return None
        return key

    def client(self, name: str, spec: YMap, disabled: list[str]) -> Client | None:
        what = f"client '{name}'"
        self.fields(spec, ("key_env", "channels", "rate_per_minute"), ("key_env", "channels"), what)
        channels = []
        for channel, loc in self.text_list(spec.get("channels"), spec.value_loc("channels"), f"channels of {what}"):
            if channel not in EXTERNAL_CHANNELS:
                self.problem(loc, f"{what}: channel '{channel}' is not one other systems write "
                                  f"({', '.join(EXTERNAL_CHANNELS)}){did_you_mean(channel, EXTERNAL_CHANNELS)}")
            else:
                channels.append(channel)
        rate = self.whole(spec, "rate_per_minute", DEFAULT_RATE_PER_MINUTE, 1, 1_000_000)
        key = self.key(spec, what, disabled)
        if key is None or not channels:
            return None
        return Client(name, key, frozenset(channels), rate)

    def roles(self, raw: YMap) -> dict[str, frozenset[str]]:
        value = self.section(raw, "roles", "config/context.yaml")
        out: dict[str, frozenset[str]] = {}
        if value is None:
            return out
        for role, perms in value.items():
            granted = []
            for perm, loc in ([] if perms is None or perms == [] else
                              self.text_list(perms, value.value_loc(role), f"permissions of role '{role}'")):
                if perm not in PERMISSIONS:
                    self.problem(loc, f"role '{role}': unknown permission '{perm}' ({', '.join(PERMISSIONS)})"
                                      f"{did_you_mean(perm, PERMISSIONS)}")
                else:
                    granted.append(perm)
            out[str(role)] = frozenset(granted)
        return out

    def staff(self, name: str, spec: YMap, roles: Mapping[str, frozenset[str]], disabled: list[str]) -> Staff | None:
        what = f"staff '{name}'"
        self.fields(spec, ("key_env", "role"), ("key_env", "role"), what)
        role = self.text(spec, "role", "") or ""
        if role and role not in roles:
            self.problem(spec.value_loc("role"), f"{what}: unknown role '{role}'{did_you_mean(role, roles)}")
            return None
        key = self.key(spec, what, disabled)
        if key is None or not role:
            return None
        return Staff(name, key, role, roles[role])
