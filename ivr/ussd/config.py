"""``config/ussd.yaml``: service codes, navigation keys, session timing, limits, auth, texts.

Read with :func:`ivr.config.source.read_yaml`, so every mistake is reported as
``path:line:col: message`` and all of them at once, when the file is loaded, never
during a session. Secrets are not in the file: ``auth.secret_env`` names the
environment variable that holds the HMAC secret. See docs/ussd.md.
"""

from __future__ import annotations

import ipaddress
import os
import re
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from ivr.config.problems import Problem
from ivr.config.reader import ConfigReader, FieldRule, Number, Whole
from ivr.config.source import YList, YMap, read_yaml_mapping
from ivr.ussd.errors import UssdConfigInvalid

#: How a code is answered. One mode today: the menu tree, from the code's ``entry`` (or where
#: config/numbers.yaml maps the code, or the tree's entry). The balance shortcut of earlier
#: versions is a node of the tree now (``balance_only``), so it is validated, simulated and
#: journaled like every other step.
Mode = Literal["tree"]
MODES: tuple[str, ...] = ("tree",)
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: A service code as subscribers dial it: ``*100#``, ``*111*2#``.
SERVICE_CODE = re.compile(r"^\*[0-9]+(\*[0-9]+)*#$")
#: Keys a subscriber can type on any handset; ``*`` is the protocol's input separator, so never a key.
NAV_KEY = re.compile(r"^[0-9#]{1,3}$")
PRESET = re.compile(r"^[0-9#]{1,16}$")

DEFAULT_TIMEOUT_S = 180.0
DEFAULT_RESUME_WINDOW_S = 120.0
DEFAULT_MAX_TEXT = 256
DEFAULT_MAX_BODY_BYTES = 4096
#: The whole answer, CRM included; aggregators give up after about 10 s.
DEFAULT_DEADLINE_S = 2.0
DEFAULT_BURST = 10
DEFAULT_PER_MINUTE = 30.0
DEFAULT_SIGNATURE_HEADER = "X-IVR-Signature"

#: Screens the gateway itself shows, per language; the file may override any of them.
#: ``{code}`` is the dialled service code.
DEFAULT_TEXTS: Mapping[str, Mapping[str, str]] = {
    "try_later": {"en": "Sorry, the service is busy. Please try again later.",
                  "ru": "Извините, сервис перегружен. Попробуйте позже."},
    "unknown_code": {"en": "Sorry, this service code is not in use.",
                     "ru": "Извините, этот код не обслуживается."},
    "expired": {"en": "Your session has timed out. Please dial {code} again.",
                "ru": "Время сеанса истекло. Наберите {code} ещё раз."},
    "restart": {"en": "Sorry, the menu has changed. Please dial {code} again.",
                "ru": "Извините, меню изменилось. Наберите {code} ещё раз."},
    "resume": {"en": "You left a menu unfinished.", "ru": "Вы не закончили работу с меню."},
    "resume_continue": {"en": "Continue", "ru": "Продолжить"},
    "resume_restart": {"en": "Start over", "ru": "Начать заново"},
    "route": {"en": "To talk to an operator, please call 100.",
              "ru": "Чтобы поговорить с оператором, позвоните по номеру 100."},
    "rate_limited": {"en": "Too many requests. Please wait a minute and try again.",
                     "ru": "Слишком много запросов. Подождите минуту и попробуйте снова."},
    "more": {"en": "More", "ru": "Далее"},
    # Not "Back": menus have their own "9. Back" to the previous menu; this is the previous page.
    "back": {"en": "Previous", "ru": "Предыдущая"},
}
TEXT_PLACEHOLDERS: Mapping[str, frozenset[str]] = {}
_ANY_PLACEHOLDERS = frozenset({"code"})

TOP_FIELDS = frozenset({"version", "path", "events_path", "language", "codes", "keys", "session", "limits",
                        "rate_limit", "auth", "texts"})
CODE_FIELDS = frozenset({"mode", "service", "entry", "inputs"})


@dataclass(frozen=True)
class ServiceCode:
    """What one dialled code does: ``balance`` answers in one screen, ``tree`` opens the menus.

    ``inputs`` are fed to the tree before the subscriber's own, as if they had typed them
    (``*111*2#`` = ``*111#`` then 2). ``service`` is what the agent's screen pop says
    ("checked balance by USSD *100#").
    """

    code: str
    mode: Mode
    service: str
    entry: str | None = None
    inputs: tuple[str, ...] = ()
    where: str = field(default="", compare=False)  # path:line:col in the file, for later checks

#: Characters of one USSD screen most handsets show (GSM 03.90 allows 182 in the 7-bit alphabet).
DEFAULT_SCREEN_CHARS = 182


@dataclass(frozen=True)
class Keys:
    """The gateway's own keys: ``more``/``back`` page a long screen; ``resume``/``restart``
    answer the offer to continue a session that broke off."""

    more: str = "#"
    back: str = "00"
    resume: str = "1"
    restart: str = "2"


@dataclass(frozen=True)
class SessionPolicy:
    """``timeout_s`` of inactivity ends a session; a session that broke off mid-menu is offered
    for resumption when the subscriber dials again within ``resume_window_s`` of its last step."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    resume_window_s: float = DEFAULT_RESUME_WINDOW_S

    @property
    def retain_s(self) -> float:
        """How long a record stays in the kv store: long enough to answer "timed out" and to resume."""
        return self.timeout_s + self.resume_window_s


@dataclass(frozen=True)
class Limits:
    max_text: int = DEFAULT_MAX_TEXT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    deadline_s: float = DEFAULT_DEADLINE_S
    screen_chars: int = DEFAULT_SCREEN_CHARS


@dataclass(frozen=True)
class RateLimit:
    """A token bucket per subscriber number: ``burst`` requests at once, ``per_minute`` sustained.

    ``burst: 0`` turns the limit off.
    """

    burst: int = DEFAULT_BURST
    per_minute: float = DEFAULT_PER_MINUTE

    @property
    def enabled(self) -> bool:
        return self.burst > 0


@dataclass(frozen=True)
class Auth:
    """Optional webhook authentication: an HMAC-SHA256 of the raw body and/or an IP allow-list."""

    secret: bytes | None = field(default=None, repr=False)
    header: str = DEFAULT_SIGNATURE_HEADER
    allow_from: tuple[IpNetwork, ...] = ()


@dataclass(frozen=True)
class Texts:
    """The gateway's own screens by name and language; a missing language falls back."""

    by_name: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_TEXTS)
    fallback: str = "en"

    def get(self, name: str, language: str, **values: str) -> str:
        texts = self.by_name[name]
        text = texts.get(language) or texts.get(self.fallback) or next(iter(texts.values()))
        return text.format(**values) if values else text


SESSION_RULES: Mapping[str, FieldRule] = {"timeout_s": Number(10, 3600), "resume_window_s": Number(0, 86400)}
LIMIT_RULES: Mapping[str, FieldRule] = {"max_text": Whole(16, 4096), "max_body_bytes": Whole(512, 1 << 20),
                                        "deadline_s": Number(0.1, 9), "screen_chars": Whole(60, 1000)}
RATE_RULES: Mapping[str, FieldRule] = {"burst": Whole(0, 10_000), "per_minute": Number(0.1, 100_000)}


@dataclass(frozen=True)
class UssdConfig:
    codes: Mapping[str, ServiceCode]
    keys: Keys = field(default_factory=Keys)
    session: SessionPolicy = field(default_factory=SessionPolicy)
    limits: Limits = field(default_factory=Limits)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    auth: Auth = field(default_factory=Auth)
    texts: Texts = field(default_factory=Texts)
    path: str = "/ussd"
    events_path: str = "/ussd/events"  # the aggregator's end-of-session notifications
    language: str = "en"  # for screens shown before the subscriber is known (rate limit, unknown code)


def load_ussd_config(path: Path | str, *, env: Mapping[str, str] | None = None) -> UssdConfig:
    """The configuration in ``path``; raises :class:`UssdConfigInvalid` listing every problem."""
    config, problems = analyse_ussd_config(path, env=env)
    if problems or config is None:
        raise UssdConfigInvalid(problems or [Problem(str(path), 1, 1, "no configuration")])
    return config


def analyse_ussd_config(path: Path | str, *, env: Mapping[str, str] | None = None
                        ) -> tuple[UssdConfig | None, list[Problem]]:
    """The configuration and the problems found; the configuration is None only if unreadable."""
    problems: list[Problem] = []
    data = read_yaml_mapping(path, problems)
    if data is None:
        return None, problems
    reader = _Reader(problems, os.environ if env is None else env)
    reader.fields(data, TOP_FIELDS, (), "the USSD settings")
    version = data.get("version", 1)
    if version != 1:
        problems.append(Problem.at(data.value_loc("version"), f"unsupported version {version!r}; expected 1"))
    url_path = reader.text(data, "path", "/ussd") or "/ussd"
    if not url_path.startswith("/"):
        problems.append(Problem.at(data.value_loc("path"), f"path {url_path!r} must start with '/'"))
    default_events = url_path.rstrip("/") + "/events"
    events_path = reader.text(data, "events_path", default_events) or default_events
    if not events_path.startswith("/") or events_path == url_path:
        problems.append(Problem.at(data.value_loc("events_path"),
                                   f"events_path {events_path!r} must start with '/' and differ from path"))
    texts = reader.texts(data)
    language = reader.text(data, "language", "en") or "en"
    if language not in texts.by_name["try_later"]:
        problems.append(Problem.at(data.value_loc("language"), f"no texts in language {language!r}"))
    keys = reader.keys(data)
    config = UssdConfig(
        codes=MappingProxyType(reader.codes(data)),
        keys=keys,
        session=reader.session(data),
        limits=reader.limits(data),
        rate_limit=reader.rate_limit(data),
        auth=reader.auth(data),
        texts=Texts(texts.by_name, language),
        path=url_path,
        events_path=events_path,
        language=language,
    )
    return config, problems


class _Reader(ConfigReader):
    """The USSD file's own structure (service codes, keys, auth, texts) on the shared typed reads."""

    def area(self, data: YMap, name: str, allowed: frozenset[str]) -> YMap:
        """A section that may be absent: then an empty one, so every read gives its default."""
        return self.section(data, name, f"'{name}'", allowed=allowed) or YMap(data.value_loc(name))

    def codes(self, data: YMap) -> dict[str, ServiceCode]:
        raw = data.get("codes")
        if not isinstance(raw, YMap) or not raw:
            self.problem(data.value_loc("codes") if "codes" in data else data.loc,
                     "'codes' must map service codes (\"*100#\") to what they do")
            return {}
        codes: dict[str, ServiceCode] = {}
        for code, spec in raw.items():
            loc = raw.key_loc(code)
            if not isinstance(code, str) or not SERVICE_CODE.match(code):
                written = raw.raw_keys.get(code, str(code))
                self.problem(loc, f"service code {written!r} must look like \"*100#\" or \"*111*2#\" (quote it)")
                continue
            if not isinstance(spec, YMap):
                self.problem(raw.value_loc(code), f"service code {code}: expected a mapping with 'mode'")
                continue
            self.fields(spec, CODE_FIELDS, (), f"service code {code}")
            mode = spec.get("mode", "tree")
            if mode == "balance":
                self.problem(spec.value_loc("mode"), f"service code {code}: mode 'balance' is now a node of the menu "
                             "tree: use mode tree and map the code to 'balance_only' in config/numbers.yaml")
                continue
            if mode not in MODES:
                self.problem(spec.value_loc("mode") if "mode" in spec else spec.loc,
                             f"service code {code}: 'mode' must be one of {', '.join(MODES)}, not {mode!r}")
                continue
            default_service = "self-service menu"
            service = self.text(spec, "service", default_service) or default_service
            entry = spec.get("entry")
            if entry is not None and (not isinstance(entry, str) or not entry):
                self.problem(spec.value_loc("entry"), f"service code {code}: 'entry' must be a node id")
                entry = None
            inputs = self.presets(spec, code)
            codes[code] = ServiceCode(code, mode, service, entry, inputs, str(loc))
        return codes

    def presets(self, spec: YMap, code: str) -> tuple[str, ...]:
        raw = spec.get("inputs")
        if raw is None:
            return ()
        if not isinstance(raw, YList):
            self.problem(spec.value_loc("inputs"), f"service code {code}: 'inputs' must be a list like [\"2\"]")
            return ()
        out = []
        for i, item in enumerate(raw):
            if not isinstance(item, str) or not PRESET.match(item):
                self.problem(raw.item_loc(i), f"service code {code}: input {item!r} must be quoted keys (0-9, #)")
                continue
            out.append(item)
        return tuple(out)

    def keys(self, data: YMap) -> Keys:
        section = self.area(data, "keys", frozenset({"more", "back", "resume", "restart"}))
        keys = {}
        for name, default in (("more", Keys.more), ("back", Keys.back), ("resume", Keys.resume),
                              ("restart", Keys.restart)):
            value = section.get(name, default)
            if not isinstance(value, str) or not NAV_KEY.match(value):
                self.problem(section.value_loc(name), f"keys.{name} must be 1 to 3 quoted keys from 0-9 and # "
                                                  f"('*' separates inputs in the protocol), not {value!r}")
                value = default
            keys[name] = value
        if keys["more"] == keys["back"]:
            self.problem(section.loc, "keys.more and keys.back must differ")
        if len({keys["resume"], keys["restart"], keys["more"], keys["back"]}) < 4:
            self.problem(section.loc, "keys.resume and keys.restart must differ from each other and from more and back")
        return Keys(**keys)

    def session(self, data: YMap) -> SessionPolicy:
        return self.record(self.section(data, "session", "'session'"), SessionPolicy(), SESSION_RULES, "'session'")

    def limits(self, data: YMap) -> Limits:
        return self.record(self.section(data, "limits", "'limits'"), Limits(), LIMIT_RULES, "'limits'")

    def rate_limit(self, data: YMap) -> RateLimit:
        return self.record(self.section(data, "rate_limit", "'rate_limit'"), RateLimit(), RATE_RULES,
                           "'rate_limit'")

    def auth(self, data: YMap) -> Auth:
        section = self.area(data, "auth", frozenset({"secret_env", "header", "allow_from"}))
        secret: bytes | None = None
        name = section.get("secret_env")
        if name is not None:
            if not isinstance(name, str) or not name:
                self.problem(section.value_loc("secret_env"), "auth.secret_env must name an environment variable")
            elif not self.env.get(name):
                self.problem(section.value_loc("secret_env"),
                         f"auth.secret_env names {name}, which is not set (or empty) in the environment")
            elif len(self.env[name]) < 16:
                self.problem(section.value_loc("secret_env"), f"the secret in {name} is shorter than 16 characters")
            else:
                secret = self.env[name].encode("utf-8")
        header = self.text(section, "header", DEFAULT_SIGNATURE_HEADER) or DEFAULT_SIGNATURE_HEADER
        networks: list[IpNetwork] = []
        raw = section.get("allow_from")
        if raw is not None and not isinstance(raw, YList):
            self.problem(section.value_loc("allow_from"), "auth.allow_from must be a list of addresses or networks")
        if not isinstance(raw, YList):
            raw = YList(section.loc)
        for i, item in enumerate(raw):
            try:
                networks.append(ipaddress.ip_network(str(item), strict=False))
            except ValueError:
                self.problem(raw.item_loc(i), f"auth.allow_from: {item!r} is not an IP address or network")
        return Auth(secret, header, tuple(networks))

    def texts(self, data: YMap) -> Texts:
        by_name = {name: dict(texts) for name, texts in DEFAULT_TEXTS.items()}
        section = self.area(data, "texts", frozenset(DEFAULT_TEXTS))
        for name, value in section.items():
            if name not in DEFAULT_TEXTS:
                continue
            if not isinstance(value, YMap):
                self.problem(section.value_loc(name), f"texts.{name} must map languages to text, like {{en: ...}}")
                continue
            for lang, text in value.items():
                if not isinstance(text, str) or not text.strip():
                    self.problem(value.value_loc(lang), f"texts.{name}.{lang} must be non-empty text")
                    continue
                problem = _placeholder_problem(text, TEXT_PLACEHOLDERS.get(name, _ANY_PLACEHOLDERS))
                if problem:
                    self.problem(value.value_loc(lang), f"texts.{name}.{lang}: {problem}")
                    continue
                by_name[name][str(lang)] = text
        return Texts(MappingProxyType({k: MappingProxyType(v) for k, v in by_name.items()}))


def _placeholder_problem(text: str, allowed: frozenset[str]) -> str | None:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        return f"bad placeholder ({exc}); write a literal brace as {{{{ or }}}}"
    for name in names:
        if name not in allowed:
            known = ", ".join("{" + n + "}" for n in sorted(allowed))
            return f"unknown placeholder {{{name}}}; this text may use {known}"
    return None


def check_entries(config: UssdConfig, node_ids: Collection[str]) -> list[str]:
    """Tree codes whose ``entry`` is not a node of the tree: the file and the menus disagree.

    Checked when the gateway is built (the config loader does not read the menus) and
    usable by ``ivr validate``.
    """
    return [f"{c.where or 'ussd.yaml'}: service code {c.code}: entry node {c.entry!r} is not in the menu tree"
            for c in config.codes.values() if c.mode == "tree" and c.entry is not None and c.entry not in node_ids]
