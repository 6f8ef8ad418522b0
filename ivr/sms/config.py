"""``config/sms.yaml`` as frozen values, checked completely at load time.

Every problem in the file is collected with its ``path:line:col`` and raised at once
as :class:`SmsConfigInvalid`, so a broken keyword file never reaches a subscriber: the
gateway either starts with a grammar that works or does not start. Checks: unknown or
missing fields, wrong types, a reply missing a language, templates that do not compile or
use unknown names, actions the CRM does not have (and their args), two commands whose
keywords fold to the same skeleton, ports and limits out of range.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from jinja2.environment import Template

from ivr.config.problems import Loc, Problem, did_you_mean, type_name
from ivr.config.reader import ConfigReader, FieldRule, Number, Text, Whole
from ivr.config.source import YList, YMap, parse_yaml, read_yaml
from ivr.crm.action_catalog import ACTION_ARGS
from ivr.crm.directory_ports import ACTIONS as CRM_ACTIONS
from ivr.exposure import Secret
from ivr.flow.action_signature import check_value, signature_of
from ivr.flow.validate import KnownActions
from ivr.sms import keyword_fold as skel
from ivr.sms import templates
from ivr.sms.errors import SmsConfigInvalid

#: What a command may run: the CRM's actions, and a callback (taken before the CRM).
ACTIONS = frozenset(CRM_ACTIONS) | {"callback"}
#: What a command may run when the caller names nothing else: the built-ins a text can carry.
BUILT_IN_ACTIONS: KnownActions = {name: args for name, args in ACTION_ARGS.items() if name in ACTIONS}
SUPPORTED_VERSION = 1
#: The most SMS parts Kannel may send for one message; more is a bill, not a reply.
MAX_PARTS = 10

Effect = Literal["opt_out", "opt_in"]
EFFECTS: tuple[Effect, ...] = ("opt_out", "opt_in")
#: Environment variables that override secrets, so they need not sit in the file.
SECRET_ENV = {
    "hmac_secret": "IVR_SMS_HMAC_SECRET",
    "sendsms_password": "IVR_SMS_SENDSMS_PASSWORD",
    "admin_password": "IVR_SMS_ADMIN_PASSWORD",
}
#: Environment variables that override where smsbox's sendsms listens and who may use it: a
#: deployment (Docker: Kannel and the controller in containers of their own) sets them.
DEPLOY_ENV = {
    "sendsms_host": "IVR_SMS_SENDSMS_HOST",
    "sendsms_allow": "IVR_SMS_SENDSMS_ALLOW",
}
REQUIRED_REPLIES = ("not_customer", "failed")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class LocalText:
    """One text in every configured language, compiled. ``name`` is what the journey records."""

    name: str
    sources: Mapping[str, str]
    compiled: Mapping[str, Template] = field(repr=False, compare=False)

    def render(self, language: str, context: Mapping[str, Any]) -> str:
        return templates.render(self.compiled[language], f"{self.name} ({language})", context)


@dataclass(frozen=True)
class Keyword:
    text: str
    language: str
    skeleton: str


@dataclass(frozen=True)
class Argument:
    """The words after a keyword: one of fixed choices (``TARIFF SMART``), or, when ``free``,
    whatever was written (``ORDER 12345``), which the action's own argument types check."""

    name: str
    choices: Mapping[str, str]  # skeleton of every spelling -> the value the action gets
    values: tuple[str, ...]  # the canonical values, in file order
    invalid: LocalText
    free: bool = False


@dataclass(frozen=True)
class Command:
    """What a keyword does: run a named action, or an opt-out/in, or just reply."""

    name: str
    keywords: tuple[Keyword, ...]
    reply: LocalText
    action: str | None = None
    args: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    argument: Argument | None = None
    effect: Effect | None = None
    # The reply when the action fails (it sees result.error and result.reason); else replies.failed
    failure: LocalText | None = None


@dataclass(frozen=True)
class Notification:
    name: str
    text: LocalText
    vars: tuple[str, ...]


@dataclass(frozen=True)
class Limits:
    max_text_chars: int = 1000
    rate_count: int = 5
    rate_window_s: float = 60.0


@dataclass(frozen=True)
class Security:
    allow_ips: tuple[IpNetwork, ...] = ()
    hmac_secret: str = ""


@dataclass(frozen=True)
class KannelConfig:
    """The Kannel side: ports, the sendsms account, where its files go."""

    controller_url: str = ""
    admin_port: int = 13000
    smsbox_port: int = 13001
    fake_smsc_port: int = 13010
    sendsms_port: int = 13013
    #: where smsbox's sendsms listens, and where the controller sends its texts
    sendsms_host: str = "127.0.0.1"
    #: who may use sendsms (Kannel's ``user-allow-ip``: addresses, ``*`` patterns, ``;``-separated)
    sendsms_allow: str = "127.0.0.1"
    sendsms_user: str = "ivr"
    sendsms_password: str = "demo-sendsms-password"
    admin_password: str = "demo-kannel-admin"
    state_dir: str = "var/kannel"
    dlr_mask: int = 31
    max_messages: int = MAX_PARTS


def gateway_secrets(config: KannelConfig, security: Security) -> list[Secret]:
    """The SMS side's secrets, for :func:`ivr.exposure.refuse_weak_secrets`: the Kannel accounts the
    controller uses, and the webhook's HMAC secret when one is set (an allow-list may guard it instead)."""
    defaults = KannelConfig()
    found = [Secret("config/sms.yaml kannel.sendsms_password", SECRET_ENV["sendsms_password"],
                    config.sendsms_password, defaults.sendsms_password, min_length=12),
             Secret("config/sms.yaml kannel.admin_password", SECRET_ENV["admin_password"],
                    config.admin_password, defaults.admin_password, min_length=12)]
    if security.hmac_secret:
        found.append(Secret("config/sms.yaml security.hmac_secret", SECRET_ENV["hmac_secret"], security.hmac_secret,
                            ""))
    return found


@dataclass(frozen=True)
class SmsConfig:
    path: str
    languages: tuple[str, ...]
    default_language: str
    max_segments: int
    sender: str
    fallback: str
    limits: Limits
    security: Security
    kannel: KannelConfig
    commands: Mapping[str, Command]
    replies: Mapping[str, LocalText]
    notifications: Mapping[str, Notification]

    @property
    def fallback_command(self) -> Command:
        return self.commands[self.fallback]


# ------------------------------------------------------------------------------ loading


def load_sms_config(path: Path | str, *, env: Mapping[str, str] | None = None,
                    known_actions: KnownActions | None = None) -> SmsConfig:
    """Read and check ``path``; secrets may come from ``env`` (see :data:`SECRET_ENV`).

    ``known_actions``: every action a command may run, with its arguments (default: the
    built-in ones; ``ivr serve`` adds those declared in config/actions.yaml).
    """
    problems: list[Problem] = []
    data = read_yaml(path, problems)
    return _build(data, str(path), problems, env or {}, known_actions)


def parse_sms_config(text: str, name: str = "sms.yaml", *, env: Mapping[str, str] | None = None,
                     known_actions: KnownActions | None = None) -> SmsConfig:
    """Like :func:`load_sms_config` for text in memory (tests, editors)."""
    problems: list[Problem] = []
    data = parse_yaml(text, name, problems)
    return _build(data, name, problems, env or {}, known_actions)


def _build(data: Any, name: str, problems: list[Problem], env: Mapping[str, str],
           known_actions: KnownActions | None = None) -> SmsConfig:
    if problems:
        raise SmsConfigInvalid(problems)
    if not isinstance(data, YMap):
        raise SmsConfigInvalid([Problem(name, 1, 1, f"expected a mapping at the top, got {type_name(data)}")])
    config = _Loader(name, problems, env, known_actions if known_actions is not None else BUILT_IN_ACTIONS).root(data)
    if problems or config is None:
        raise SmsConfigInvalid(sorted(set(problems)))
    return config


LIMIT_RULES: Mapping[str, FieldRule] = {
    "max_text_chars": Whole(1, 100_000), "rate_count": Whole(1, 1_000_000), "rate_window_s": Number(0.001, 86_400 * 7)}
KANNEL_PORTS = ("admin_port", "smsbox_port", "fake_smsc_port", "sendsms_port")
KANNEL_RULES: Mapping[str, FieldRule] = {
    **{port: Whole(1024, 65535) for port in KANNEL_PORTS}, "controller_url": Text(allow_empty=True),
    "sendsms_user": Text(), "state_dir": Text(), "dlr_mask": Whole(0, 31), "max_messages": Whole(1, MAX_PARTS),
    "sendsms_host": Text(), "sendsms_allow": Text()}
_ROOT_KEYS = {"version", "languages", "default_language", "max_segments", "sender", "fallback", "limits",
              "security", "kannel", "replies", "commands", "notifications"}
_COMMAND_KEYS = {"keywords", "reply", "action", "args", "argument", "effect", "failure"}


class _Loader(ConfigReader):
    def __init__(self, path: str, problems: list[Problem], env: Mapping[str, str],
                 known_actions: KnownActions) -> None:
        super().__init__(problems, env)
        self.known_actions = known_actions
        self.path = path
        self.languages: tuple[str, ...] = ()

    def local_text(self, m: YMap, key: str, name: str) -> LocalText | None:
        """A ``{en: ..., ru: ...}`` text, every language present, every template compiled."""
        value = m.get(key)
        if not isinstance(value, YMap):
            if key in m:
                self.problem(m.value_loc(key), f"'{key}' must map each language to a text, got {type_name(value)}")
            else:
                self.problem(m.loc, f"{name} needs '{key}'")
            return None
        ok = True
        sources: dict[str, str] = {}
        compiled: dict[str, Template] = {}
        for lang in value:
            if lang not in self.languages:
                self.problem(value.key_loc(lang), f"unknown language '{lang}'{did_you_mean(str(lang), self.languages)}"
                             f" (languages: {', '.join(self.languages)})")
                ok = False
        for lang in self.languages:
            if lang not in value:
                self.problem(value.loc, f"'{key}' of {name} has no '{lang}' text")
                ok = False
                continue
            text = value[lang]
            if not isinstance(text, str) or not text.strip():
                self.problem(value.value_loc(lang), f"the '{lang}' text must be non-empty text, got {type_name(text)}")
                ok = False
                continue
            try:
                compiled[lang] = templates.compile_text(text)
            except templates.CompileError as exc:
                where = value.value_loc(lang)
                self.problem(where, f"template error: {exc.message}")
                ok = False
                continue
            sources[lang] = text
        if not ok:
            return None
        return LocalText(name, MappingProxyType(sources), MappingProxyType(compiled))

    # -- sections --------------------------------------------------------------------
    def root(self, m: YMap) -> SmsConfig | None:
        self.fields(m, _ROOT_KEYS, {"version", "languages", "commands", "replies", "fallback"}, "the SMS configuration")
        if "version" in m and m["version"] != SUPPORTED_VERSION:
            self.problem(m.value_loc("version"), f"unsupported version {m['version']!r}; this build reads {SUPPORTED_VERSION}")
        langs = [lang for lang, _ in self.text_list(m.get("languages"), m.value_loc("languages"), "'languages'")]
        self.languages = tuple(dict.fromkeys(langs))
        if not self.languages:
            return None
        default_language = self.text(m, "default_language", self.languages[0]) or self.languages[0]
        if default_language not in self.languages:
            self.problem(m.value_loc("default_language"), f"default_language '{default_language}' is not in languages")
        kannel = self.kannel(self.section(m, "kannel", "the SMS configuration"))
        max_segments = self.whole(m, "max_segments", 3, 1, MAX_PARTS)
        if max_segments > kannel.max_messages:
            self.problem(m.value_loc("max_segments"),
                         f"max_segments {max_segments} is more than kannel.max_messages {kannel.max_messages}")
        sender = self.text(m, "sender", "") or ""
        limits = self.limits(self.section(m, "limits", "the SMS configuration"))
        security = self.security(self.section(m, "security", "the SMS configuration"))
        replies = self.replies(self.section(m, "replies", "the SMS configuration", required=True))
        commands = self.commands(self.section(m, "commands", "the SMS configuration", required=True))
        notifications = self.notifications(self.section(m, "notifications", "the SMS configuration"))
        fallback = self.text(m, "fallback", "") or ""
        if fallback and commands is not None and fallback not in commands:
            self.problem(m.value_loc("fallback"), f"fallback '{fallback}' is not a command{did_you_mean(fallback, commands)}")
        elif fallback and commands is not None:
            chosen = commands[fallback]
            if chosen.action or chosen.argument or chosen.effect:
                self.problem(m.value_loc("fallback"), f"fallback '{fallback}' must be a plain reply (no action, "
                             "argument or effect): an unrecognised text must never change anything")
        if commands is None or replies is None or self.problems:
            return None
        return SmsConfig(self.path, self.languages, default_language, max_segments, sender, fallback, limits,
                         security, kannel, MappingProxyType(commands), MappingProxyType(replies),
                         MappingProxyType(notifications))

    def kannel(self, m: YMap | None) -> KannelConfig:
        d = KannelConfig(sendsms_password=self.env.get(SECRET_ENV["sendsms_password"]) or KannelConfig.sendsms_password,
                         admin_password=self.env.get(SECRET_ENV["admin_password"]) or KannelConfig.admin_password)
        if m is None:
            return self.deployed(None, d)
        read = self.record(m, d, KANNEL_RULES, "'kannel'", also=("sendsms_password", "admin_password"))
        seen: dict[int, str] = {}
        for name in KANNEL_PORTS:
            port = getattr(read, name)
            if port in seen:
                self.problem(m.value_loc(name), f"'{name}' {port} is also {seen[port]}")
            seen[port] = name
        if read.controller_url and not read.controller_url.startswith(("http://", "https://")):
            self.problem(m.value_loc("controller_url"), "controller_url must start with http:// or https://")
        return self.deployed(m, dataclasses.replace(
            read, controller_url=read.controller_url.rstrip("/"),
            sendsms_password=self.secret(m, "sendsms_password", SECRET_ENV["sendsms_password"], d.sendsms_password),
            admin_password=self.secret(m, "admin_password", SECRET_ENV["admin_password"], d.admin_password)))

    def where(self, m: YMap | None, key: str) -> Loc:
        return m.value_loc(key) if m is not None else Loc(self.path)

    def deployed(self, m: YMap | None, kannel: KannelConfig) -> KannelConfig:
        """``kannel`` with the deployment's sendsms host and allow list (:data:`DEPLOY_ENV`), checked."""
        host = self.env.get(DEPLOY_ENV["sendsms_host"]) or kannel.sendsms_host
        allow = self.env.get(DEPLOY_ENV["sendsms_allow"]) or kannel.sendsms_allow
        try:
            ipaddress.ip_address(host)
        except ValueError:
            self.problem(self.where(m, "sendsms_host"), f"sendsms_host {host!r} must be an IP address (the interface smsbox listens on; "
                         f"{DEPLOY_ENV['sendsms_host']} overrides it)")
        if not re.fullmatch(r"[0-9A-Fa-f.:*]+(;[0-9A-Fa-f.:*]+)*", allow):
            self.problem(self.where(m, "sendsms_allow"), f"sendsms_allow {allow!r} must be addresses or * patterns separated by ';' "
                         f"({DEPLOY_ENV['sendsms_allow']} overrides it)")
        return dataclasses.replace(kannel, sendsms_host=host, sendsms_allow=allow)

    def limits(self, m: YMap | None) -> Limits:
        return self.record(m, Limits(), LIMIT_RULES, "'limits'")

    def security(self, m: YMap | None) -> Security:
        if m is None:
            return Security(hmac_secret=self.env.get(SECRET_ENV["hmac_secret"], ""))
        self.fields(m, {"allow_ips", "hmac_secret"}, set(), "'security'")
        nets: list[IpNetwork] = []
        if "allow_ips" in m:
            for text, loc in self.text_list(m["allow_ips"], m.value_loc("allow_ips"), "'allow_ips'"):
                try:
                    nets.append(ipaddress.ip_network(text, strict=False))
                except ValueError:
                    self.problem(loc, f"'{text}' is not an IP address or network")
        return Security(tuple(nets), self.secret(m, "hmac_secret", SECRET_ENV["hmac_secret"]))

    def replies(self, m: YMap | None) -> dict[str, LocalText] | None:
        if m is None:
            return None
        self.fields(m, set(REQUIRED_REPLIES), set(REQUIRED_REPLIES), "'replies'")
        out = {}
        for name in REQUIRED_REPLIES:
            if name in m:
                text = self.local_text(m, name, f"reply '{name}'")
                if text is not None:
                    out[name] = LocalText(f"reply.{name}", text.sources, text.compiled)
        return out

    def commands(self, m: YMap | None) -> dict[str, Command] | None:
        if m is None:
            return None
        out: dict[str, Command] = {}
        # skeleton -> (command, loc), separately for plain keywords and keywords taking an argument
        plain: dict[str, tuple[str, Loc]] = {}
        with_arg: dict[str, tuple[str, Loc]] = {}
        for name, body in m.items():
            where = m.key_loc(name)
            if not isinstance(name, str) or not name.isidentifier():
                self.problem(where, f"command name '{m.raw_keys.get(name, name)}' must be a word (letters, digits, _)")
                continue
            if not isinstance(body, YMap):
                self.problem(m.value_loc(name), f"command '{name}' must be a mapping, got {type_name(body)}")
                continue
            command = self.command(name, body)
            if command is None:
                continue
            table = plain if command.argument is None else with_arg
            kw_locs = self._keyword_locs(body)
            for kw in command.keywords:
                loc = kw_locs.get((kw.language, kw.text), body.loc)
                if kw.skeleton in table and table[kw.skeleton][0] != name:
                    other, first = table[kw.skeleton]
                    self.problem(loc, f"keyword '{kw.text}' reads the same as a keyword of '{other}' "
                                 f"(line {first.line}): both are '{kw.skeleton}' once case and look-alike letters "
                                 "are folded")
                table.setdefault(kw.skeleton, (name, loc))
            out[name] = command
        if not out and not self.problems:
            self.problem(m.loc, "'commands' is empty")
        return out

    def _keyword_locs(self, body: YMap) -> dict[tuple[str, str], Loc]:
        locs: dict[tuple[str, str], Loc] = {}
        kws = body.get("keywords")
        if isinstance(kws, YMap):
            for lang, items in kws.items():
                if isinstance(items, YList):
                    for i, item in enumerate(items):
                        locs[(str(lang), str(item))] = items.item_loc(i)
        return locs

    def command(self, name: str, m: YMap) -> Command | None:
        before = len(self.problems)
        what = f"command '{name}'"
        self.fields(m, _COMMAND_KEYS, {"keywords", "reply"}, what)
        keywords = self.keywords(m, what)
        reply = self.local_text(m, "reply", what) if "reply" in m else None
        action = self.text(m, "action", "") or None if "action" in m else None
        args: dict[str, str] = {}
        if "args" in m:
            raw_args = m["args"]
            if not isinstance(raw_args, YMap):
                self.problem(m.value_loc("args"), f"'args' must be a mapping, got {type_name(raw_args)}")
            else:
                for key, value in raw_args.items():
                    if isinstance(value, bool) or not isinstance(value, (str, int)):
                        self.problem(raw_args.value_loc(key), f"arg '{key}' must be text, got {type_name(value)}")
                    else:
                        args[str(key)] = str(value)
            if action is None:
                self.problem(m.key_loc("args"), f"{what} has 'args' but no 'action'")
        argument = self.argument(m, name, what) if "argument" in m else None
        effect: Effect | None = None
        if "effect" in m:
            raw_effect = m["effect"]
            if raw_effect in EFFECTS:
                effect = raw_effect
            else:
                self.problem(m.value_loc("effect"), f"effect must be one of {', '.join(EFFECTS)}, got {raw_effect!r}"
                             f"{did_you_mean(str(raw_effect), EFFECTS)}")
        if effect is not None and (action is not None or argument is not None):
            self.problem(m.key_loc("effect"), f"{what}: 'effect' cannot be combined with 'action' or 'argument'")
        if action is not None:
            self.check_action(m, action, args, argument, what)
        elif argument is not None:
            self.problem(m.key_loc("argument"), f"{what} has an 'argument' but no 'action' to give it to")
        failure = self.local_text(m, "failure", what) if "failure" in m else None
        if failure is not None and action is None:
            self.problem(m.key_loc("failure"), f"{what} has a 'failure' reply but no 'action' that could fail")
        if len(self.problems) != before or reply is None:
            return None
        return Command(name, keywords, LocalText(name, reply.sources, reply.compiled), action,
                       MappingProxyType(args), argument, effect,
                       None if failure is None else LocalText(f"{name}.failure", failure.sources, failure.compiled))

    def check_action(self, m: YMap, action: str, args: Mapping[str, str], argument: Argument | None,
                     what: str) -> None:
        loc = m.value_loc("action")
        if action not in self.known_actions:
            self.problem(loc, f"unknown action '{action}'{did_you_mean(action, self.known_actions)}"
                         f" (actions: {', '.join(sorted(self.known_actions))})")
            return
        signature = signature_of(self.known_actions[action])
        needed = set(signature.required)
        allowed = {a.name for a in signature.args}
        given = set(args) | ({argument.name} if argument is not None else set())
        for missing in sorted(needed - given):
            self.problem(loc, f"action '{action}' needs arg '{missing}' (in 'args' or as the 'argument' name)")
        for extra in sorted(given - allowed):
            self.problem(loc, f"action '{action}' takes no arg '{extra}'")
        for key, value in args.items():
            spec = signature.spec(key)
            problem = None if spec is None else check_value(spec, value)
            if problem is not None:
                self.problem(loc, f"action '{action}': {problem}")

    def keywords(self, m: YMap, what: str) -> tuple[Keyword, ...]:
        raw = m.get("keywords")
        if not isinstance(raw, YMap):
            if "keywords" in m:
                self.problem(m.value_loc("keywords"),
                             f"'keywords' must map languages to lists of keywords, got {type_name(raw)}")
            return ()
        out: list[Keyword] = []
        seen: set[str] = set()
        for lang, items in raw.items():
            if lang not in self.languages:
                self.problem(raw.key_loc(lang), f"unknown language '{lang}' (languages: {', '.join(self.languages)})")
                continue
            for text, loc in self.text_list(items, raw.value_loc(lang), f"keywords of {what}"):
                folded = skel.skeleton(text)
                if not folded:
                    self.problem(loc, f"keyword '{text}' is only punctuation; it could never match")
                    continue
                if folded in seen:
                    self.problem(loc, f"keyword '{text}' repeats another keyword of {what} ('{folded}')")
                    continue
                seen.add(folded)
                out.append(Keyword(text, str(lang), folded))
        if not out and "keywords" in m and not raw:
            self.problem(raw.loc, f"{what} has no keywords")
        return tuple(out)

    def argument(self, m: YMap, command: str, what: str) -> Argument | None:
        a = self.section(m, "argument", what, required=True)
        if a is None:
            return None
        free = a.get("free") is True
        self.fields(a, {"name", "choices", "invalid", "free"}, {"name", "invalid"} | (set() if free else {"choices"}),
                    f"'argument' of {what}")
        if free and "choices" in a:
            self.problem(a.key_loc("choices"), f"'argument' of {what}: a free argument has no 'choices'")
        name = self.text(a, "name", "") or ""
        invalid = self.local_text(a, "invalid", f"'argument' of {what}") if "invalid" in a else None
        choices: dict[str, str] = {}
        values: list[str] = []
        raw = a.get("choices")
        if "choices" in a and not isinstance(raw, YMap):
            self.problem(a.value_loc("choices"), f"'choices' must map each value to its other spellings, "
                         f"got {type_name(raw)}")
        elif isinstance(raw, YMap):
            for value, spellings in raw.items():
                value_text = str(raw.raw_keys.get(value, value))
                values.append(value_text)
                spelled = [(value_text, raw.key_loc(value))]
                if spellings is not None:
                    spelled += self.text_list(spellings, raw.value_loc(value), f"spellings of '{value_text}'")
                for text, loc in spelled:
                    folded = skel.skeleton(text)
                    if not folded:
                        self.problem(loc, f"'{text}' is only punctuation; it could never match")
                    elif folded in choices and choices[folded] != value_text:
                        self.problem(loc, f"'{text}' reads the same as a spelling of '{choices[folded]}'")
                    else:
                        choices[folded] = value_text
            if not values:
                self.problem(raw.loc, "'choices' is empty")
        if not name or invalid is None or not (values or free):
            return None
        return Argument(name, MappingProxyType(choices), tuple(values),
                        LocalText(f"{command}.invalid", invalid.sources, invalid.compiled), free)

    def notifications(self, m: YMap | None) -> dict[str, Notification]:
        out: dict[str, Notification] = {}
        if m is None:
            return out
        for name, body in m.items():
            what = f"notification '{name}'"
            if not isinstance(body, YMap):
                self.problem(m.value_loc(name), f"{what} must be a mapping, got {type_name(body)}")
                continue
            self.fields(body, {"text", "vars"}, {"text"}, what)
            names = [v for v, _ in self.text_list(body["vars"], body.value_loc("vars"), f"'vars' of {what}")] \
                if "vars" in body else []
            text = self.local_text(body, "text", what)
            if text is not None:
                out[str(name)] = Notification(str(name), LocalText(f"notify.{name}", text.sources, text.compiled),
                                              tuple(names))
        return out

