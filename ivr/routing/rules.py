"""The ordered routing rules of ``config/routing.yaml`` and their evaluation.

Every route the menu asks for (``RouteToQueue``) goes through the rules, in order. A rule
whose ``when`` holds may hang up with an announcement (blacklist), choose the queue
(collections, a regional office), put an agent first (personal manager, the agent of the
last call), or raise the priority (VIP). The first rule that chooses a queue or hangs up
ends the evaluation unless it says ``continue: true``; rules that only add an agent or a
priority let evaluation go on. Every decision carries its reason in plain words, built
from the reasons of the rules that shaped it, so the agent and the reports can read why.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from ivr.config.problems import Loc, Problem, did_you_mean, type_name
from ivr.config.reader import ConfigReader
from ivr.config.source import YList, YMap, read_yaml_mapping
from ivr.config.templates import Expression, TemplateCompileError, TextTemplate, analyse
from ivr.routing.hours import DAYS, BusinessHours, HoursError, Week, parse_spans

RULE_FIELDS = frozenset({"name", "when", "queue", "priority", "priority_boost", "agent", "hangup", "announcement",
                         "reason", "continue", "area_codes"})
TOP_FIELDS = frozenset({"version", "timezone", "hours", "holidays", "after_hours", "default_queue", "agent_timeout",
                        "rules"})
ROUTING_NAMES = frozenset({"customer", "caller", "dnis", "now", "route", "last_agent", "region", "crm"})
AGENT_TECH = "PJSIP"


class RoutingInvalid(Exception):
    error_id = "routing-invalid"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("routing rules have problems:\n" + "\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Rule:
    name: str
    when: Expression | None
    queue: TextTemplate | None = None
    priority: int | None = None
    priority_boost: int = 0
    agent: TextTemplate | None = None
    hangup: bool = False
    announcement: Mapping[str, str] = field(default_factory=dict)
    reason: TextTemplate | None = None
    keep_going: bool = False
    area_codes: Mapping[str, str] = field(default_factory=dict)

    @property
    def decides(self) -> bool:
        return self.hangup or self.queue is not None or bool(self.area_codes)


@dataclass(frozen=True)
class RoutingConfig:
    rules: tuple[Rule, ...] = ()
    hours: BusinessHours = field(default_factory=BusinessHours)
    after_hours: Mapping[str, str] = field(default_factory=dict)
    default_queue: str = "support"
    agent_timeout_s: int = 15


@dataclass(frozen=True)
class RouteRequest:
    """What the menu asked for, and what the host knows about the caller right now."""

    queue: str
    priority: int
    reason: str
    customer: Mapping[str, Any] = field(default_factory=dict)
    caller_number: str | None = None  # E.164
    dnis: str | None = None
    last_agent: str | None = None
    crm_status: str = "found"


@dataclass(frozen=True)
class RouteDecision:
    """``kind``: "queue" (agent_first, if set, is rung before the queue) or "hangup"."""

    kind: str
    queue: str
    priority: int
    reason: str
    agent_first: str | None = None
    agent_timeout_s: int = 15
    announcement: Mapping[str, str] = field(default_factory=dict)
    rules: tuple[str, ...] = ()

    def announcement_for(self, language: str) -> str:
        return self.announcement.get(language) or next(iter(self.announcement.values()), "")


#: The country whose area codes ``area_codes`` rules name (+7: "812" is St Petersburg).
HOME_REGION = "RU"


@functools.lru_cache(maxsize=65_536)
def area_code(e164: str | None, region: str = HOME_REGION) -> str | None:
    """The area (national destination) code of a number of the home country, by phonenumbers' tables.

    ``+7 812 123-45-67`` -> ``"812"``, ``+7 999 ...`` -> ``"999"`` (a mobile operator's code);
    None for a number of another country, a number too short to have one, or no number.
    """
    if not e164:
        return None
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    if parsed.country_code != phonenumbers.country_code_for_region(region):
        return None
    length = phonenumbers.length_of_national_destination_code(parsed)
    return phonenumbers.national_significant_number(parsed)[:length] if length > 0 else None


def decide(config: RoutingConfig, request: RouteRequest, moment: dt.datetime) -> RouteDecision:
    if not config.hours.is_open(moment):
        local = config.hours.local(moment)
        return RouteDecision("hangup", request.queue, request.priority,
                             f"after hours: closed at {local:%a %H:%M} ({config.hours.timezone})",
                             announcement=config.after_hours, rules=("after_hours",))
    scope: dict[str, Any] = {
        "customer": request.customer, "caller": {"number": request.caller_number or ""}, "dnis": request.dnis,
        "route": {"queue": request.queue, "priority": request.priority, "reason": request.reason},
        "last_agent": request.last_agent, "region": area_code(request.caller_number), "crm": request.crm_status,
        "now": {"hour": moment.hour, "weekday": moment.weekday(), "date": moment.date().isoformat()},
    }
    queue, priority, agent = request.queue, request.priority, None
    reasons: list[str] = []
    applied: list[str] = []
    for rule in config.rules:
        if rule.when is not None and not _holds(rule.when, scope):
            continue
        region_queue = rule.area_codes.get(scope["region"] or "") if rule.area_codes else None
        if rule.area_codes and region_queue is None:
            continue
        applied.append(rule.name)
        reason = rule.reason.render(scope) if rule.reason is not None else rule.name
        if rule.hangup:
            return RouteDecision("hangup", queue, priority, reason, announcement=rule.announcement,
                                 rules=tuple(applied))
        if region_queue:
            queue = region_queue
        if rule.queue is not None:
            queue = rule.queue.render(scope)
        if rule.priority is not None:
            priority = max(priority, rule.priority)
        priority += rule.priority_boost
        if rule.agent is not None and agent is None:
            name = rule.agent.render(scope).strip()
            if name:
                agent = name if "/" in name else f"{AGENT_TECH}/{name}"
        reasons.append(reason)
        scope["route"] = {"queue": queue, "priority": priority, "reason": reason}
        if rule.decides and not rule.keep_going:
            break
    reason = "; ".join([request.reason, *reasons]) if request.reason else "; ".join(reasons)
    return RouteDecision("queue", queue, priority, reason or "caller asked for an agent", agent_first=agent,
                         agent_timeout_s=config.agent_timeout_s, rules=tuple(applied))


def _holds(expr: Expression, scope: Mapping[str, Any]) -> bool:
    try:
        return bool(expr.evaluate(scope))
    except Exception:  # noqa: BLE001 - a rule that cannot be evaluated for this caller does not apply
        return False


# ----------------------------------------------------------------------------- loading
def load_routing(path: Path | str, known_queues: frozenset[str] | None = None) -> RoutingConfig:
    config, problems = analyse_routing(path, known_queues)
    if problems or config is None:
        raise RoutingInvalid(problems)
    return config


def analyse_routing(path: Path | str, known_queues: frozenset[str] | None = None
                    ) -> tuple[RoutingConfig | None, list[Problem]]:
    problems: list[Problem] = []
    data = read_yaml_mapping(path, problems)
    if data is None:
        return None, problems
    ConfigReader(problems).fields(data, TOP_FIELDS, (), "the routing settings")
    timezone = str(data.get("timezone", "UTC"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(Problem.at(data.value_loc("timezone"), f"unknown timezone {timezone!r}"))
        timezone = "UTC"
    week: Week = {}
    hours = data.get("hours") or {}
    if isinstance(hours, YMap):
        week = read_week(ConfigReader(problems), hours, "hours")
    holidays = set()
    for i, item in enumerate(data.get("holidays") or []):
        try:
            holidays.add(item if isinstance(item, dt.date) else dt.date.fromisoformat(str(item)))
        except ValueError:
            loc = data["holidays"].item_loc(i) if isinstance(data["holidays"], YList) else data.loc
            problems.append(Problem.at(loc, f"holiday {item!r} is not a date (YYYY-MM-DD)"))
    rules = []
    raw_rules = data.get("rules", YList(data.loc))
    if raw_rules is None:
        raw_rules = YList(data.loc)
    if not isinstance(raw_rules, YList):
        problems.append(Problem.at(data.value_loc("rules"), "'rules' must be a list"))
        raw_rules = YList(data.loc)
    names: set[str] = set()
    for i, raw in enumerate(raw_rules):
        rule = _rule(raw, raw_rules.item_loc(i), i + 1, known_queues, problems)
        if rule is not None:
            if rule.name in names:
                problems.append(Problem.at(raw_rules.item_loc(i), f"duplicate rule name {rule.name!r}"))
            names.add(rule.name)
            rules.append(rule)
    default_queue = str(data.get("default_queue", "support"))
    if known_queues is not None and default_queue not in known_queues:
        problems.append(Problem.at(data.value_loc("default_queue"), _unknown_queue(default_queue, known_queues)))
    config = RoutingConfig(tuple(rules), BusinessHours(timezone, week, frozenset(holidays)),
                           {str(k): str(v) for k, v in (data.get("after_hours") or {}).items()},
                           default_queue, int(data.get("agent_timeout", 15)))
    return config, problems


def _rule(raw: Any, loc: Loc, n: int, known_queues: frozenset[str] | None, problems: list[Problem]) -> Rule | None:
    if not isinstance(raw, YMap):
        problems.append(Problem.at(loc, f"rule {n} must be a mapping, not {type_name(raw)}"))
        return None
    name = str(raw.get("name", f"rule {n}"))
    where = f"rule {name!r}"
    ConfigReader(problems).fields(raw, RULE_FIELDS, (), where)
    when = _expression(raw, "when", where, problems)
    queue = _template(raw, "queue", where, problems)
    if queue is not None and queue.is_static and known_queues is not None and queue.source not in known_queues:
        problems.append(Problem.at(raw.value_loc("queue"), _unknown_queue(queue.source, known_queues)))
    area_codes = {str(k): str(v) for k, v in (raw.get("area_codes") or {}).items()}
    for code, q in area_codes.items():
        if known_queues is not None and q not in known_queues:
            problems.append(Problem.at(raw["area_codes"].value_loc(code), _unknown_queue(q, known_queues)))
    announcement = raw.get("announcement") or {}
    if raw.get("hangup") and not announcement:
        problems.append(Problem.at(raw.loc, f"{where} hangs up and needs an 'announcement' per language"))
    for key in ("priority", "priority_boost"):
        if key in raw and not isinstance(raw[key], int):
            problems.append(Problem.at(raw.value_loc(key), f"'{key}' in {where} must be a whole number"))
    return Rule(
        name=name, when=when, queue=queue,
        priority=raw["priority"] if isinstance(raw.get("priority"), int) else None,
        priority_boost=raw["priority_boost"] if isinstance(raw.get("priority_boost"), int) else 0,
        agent=_template(raw, "agent", where, problems), hangup=bool(raw.get("hangup", False)),
        announcement={str(k): str(v) for k, v in announcement.items()} if isinstance(announcement, Mapping) else {},
        reason=_template(raw, "reason", where, problems), keep_going=bool(raw.get("continue", False)),
        area_codes=area_codes,
    )


def _names_ok(source: str, loc: Loc, where: str, problems: list[Problem]) -> bool:
    try:
        names = analyse("{{ " + source + " }}" if "{{" not in source else source).names
    except TemplateCompileError as exc:
        problems.append(Problem.at(loc, f"template in {where} does not compile: {exc}"))
        return False
    for name in sorted(names - ROUTING_NAMES):
        problems.append(Problem.at(loc, f"template in {where} uses undefined name '{name}'"
                                        f"{did_you_mean(name, ROUTING_NAMES)}"))
    return not (names - ROUTING_NAMES)


def _expression(raw: YMap, key: str, where: str, problems: list[Problem]) -> Expression | None:
    if key not in raw:
        return None
    source, loc = str(raw[key]), raw.value_loc(key)
    if not _names_ok(source, loc, where, problems):
        return None
    try:
        return Expression(source, f"{where} {key}")
    except TemplateCompileError as exc:
        problems.append(Problem.at(loc, f"'{key}' in {where} does not compile: {exc}"))
        return None


def _template(raw: YMap, key: str, where: str, problems: list[Problem]) -> TextTemplate | None:
    if key not in raw:
        return None
    source, loc = str(raw[key]), raw.value_loc(key)
    if "{{" in source and not _names_ok(source, loc, where, problems):
        return None
    try:
        return TextTemplate(source, f"{where} {key}")
    except TemplateCompileError as exc:
        problems.append(Problem.at(loc, f"'{key}' in {where} does not compile: {exc}"))
        return None


def _unknown_queue(name: str, known: frozenset[str]) -> str:
    return f"queue '{name}' is not defined in queues.conf{did_you_mean(name, known)}"


def queues_from_conf(path: Path) -> frozenset[str]:
    """Queue names defined in an Asterisk queues.conf (templates `(!)` and [general] excluded)."""
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split(";", 1)[0].strip()
        if line.startswith("[") and "]" in line:
            name = line[1:line.index("]")]
            if name != "general" and "(!)" not in line:
                names.add(name)
    return frozenset(names)


def read_week(reader: ConfigReader, m: YMap, what: str, prefix: str = "") -> Week:
    """A week of opening spans (``mon: "09:00-18:00"``, ``sun: closed``) as routing.yaml and
    callbacks.yaml write it; unknown days and bad spans are problems at their line."""
    reader.fields(m, DAYS, (), what)
    week: Week = {}
    for day in DAYS:
        try:
            week[day] = parse_spans(m.get(day, "closed"))
        except HoursError as exc:
            reader.problem(m.value_loc(day), f"{prefix}hours for {day}: {exc}")
    return week
