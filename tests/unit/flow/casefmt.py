"""The one-line notation engine cases are written in: events in, actions and journey out.

    start 100 | digits 1 | speech balance | speech@0.3 balance | timeout | hangup
    result balance ok {"balance": "12.50", "currency": "RUB"} | result balance failed

Actions print as ``play <prompt_id>: <text>``, ``collect <node> keys=<escape digits>
digits=<min>..<max> [masked]``, ``run <name> k=v``, ``set <name>=<value>``,
``route <queue> priority=<n>: <reason>``, ``hangup: <reason>``; journey events as
``<type> <node> k=v ...``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from ivr.flow import (
    Action,
    ActionResult,
    Collect,
    Digits,
    Event,
    HangUp,
    Hangup,
    JourneyEvent,
    Play,
    RouteToQueue,
    RunAction,
    SetVariable,
    Speech,
    Started,
    Timeout,
)
from ivr.flow.actions import MASK
from ivr.flow.render_text import format_parts


def parse_event(text: str) -> Event:
    word, _, rest = text.partition(" ")
    if word == "start":
        return Started(rest or None)
    if word == "digits":
        return Digits(rest)
    if word.startswith("speech"):
        confidence = float(word.partition("@")[2] or 1.0)
        return Speech(rest, confidence)
    if word == "timeout":
        return Timeout()
    if word == "hangup":
        return Hangup()
    if word == "result":
        name, _, rest = rest.partition(" ")
        status, _, data = rest.partition(" ")
        parsed = json.loads(data, parse_float=Decimal) if data else {}
        return ActionResult(name, status == "ok", parsed)
    raise ValueError(f"unknown event {text!r}")


def format_action(action: Action) -> str:
    if isinstance(action, Play):
        return f"play {action.prompt_id}: {format_parts(action.parts, sounds=True)}"
    if isinstance(action, Collect):
        masked = " masked" if action.masked else ""
        return (
            f"collect {action.node} keys={action.escape_digits} digits={action.min_digits}..{action.max_digits}{masked}"
        )
    if isinstance(action, RunAction):
        args = "".join(f" {k}={v}" for k, v in sorted(action.safe_args().items()))
        return f"run {action.name}{args}"
    if isinstance(action, SetVariable):
        return f"set {action.name}={MASK if action.masked else action.value}"
    if isinstance(action, RouteToQueue):
        return f"route {action.queue} priority={action.priority}: {action.reason}"
    if isinstance(action, HangUp):
        return f"hangup: {action.reason}"
    raise TypeError(action)


def format_journey(event: JourneyEvent) -> str:
    data: dict[str, Any] = dict(event.data)
    node = data.pop("node", None)
    extras = "".join(f" {k}={_plain(v)}" for k, v in sorted(data.items()))
    return f"{event.type} {node}{extras}"


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in sorted(value.items()))
    return str(value)
