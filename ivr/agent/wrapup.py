"""Wrap-up codes per queue, from ``config/wrapup.yaml``: the list an agent picks from.

A free-text outcome cannot be counted, so the note an agent writes back carries one code
from a short list the admin keeps per queue (``default`` for the rest). A code that is not
on the queue's list is refused with the list, so the desktop can show it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.config.problems import Problem, did_you_mean
from ivr.config.reader import ConfigReader
from ivr.config.source import YMap, read_yaml_mapping
from ivr.errors import ConfigError

CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
DEFAULT_CODES = ("resolved", "escalated")


class WrapupInvalid(ConfigError):
    def __init__(self, problems: Collection[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("wrap-up codes have problems:\n" + "\n".join(str(p) for p in self.problems),
                         hint="fix config/wrapup.yaml")


@dataclass(frozen=True)
class WrapupCodes:
    default: tuple[str, ...] = DEFAULT_CODES
    queues: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def for_queue(self, queue: str) -> tuple[str, ...]:
        return self.queues.get(queue, self.default)


def load_wrapup_codes(path: Path, known_queues: Collection[str] = ()) -> WrapupCodes:
    """The codes in ``path``; the built-in default when the file does not exist; :class:`WrapupInvalid`."""
    if not path.exists():
        return WrapupCodes()
    problems: list[Problem] = []
    data = read_yaml_mapping(path, problems)
    if data is None:
        raise WrapupInvalid(problems)
    reader = ConfigReader(problems)
    reader.fields(data, ("default", "queues"), ("default",), "wrapup.yaml")
    default = _codes(reader, data, "default", "'default'") if "default" in data else DEFAULT_CODES
    queues: dict[str, tuple[str, ...]] = {}
    section = reader.section(data, "queues", "wrapup.yaml")
    if section is not None:
        for queue in section:
            if known_queues and queue not in known_queues:
                reader.problem(section.key_loc(queue),
                               f"queue '{queue}' is not in queues.conf{did_you_mean(str(queue), known_queues)}")
            queues[str(queue)] = _codes(reader, section, queue, f"queue '{queue}'")
    if problems:
        raise WrapupInvalid(problems)
    return WrapupCodes(default, queues)


def _codes(reader: ConfigReader, m: YMap, key: str, what: str) -> tuple[str, ...]:
    codes = []
    for code, loc in reader.text_list(m[key], m.value_loc(key), f"the codes of {what}"):
        if not CODE.fullmatch(code):
            reader.problem(loc, f"wrap-up code '{code}' must be lower-case letters, digits, '-' or '_' (40 at most)")
        elif code in codes:
            reader.problem(loc, f"wrap-up code '{code}' is listed twice")
        else:
            codes.append(code)
    if not codes:
        reader.problem(m.value_loc(key), f"{what} must list at least one wrap-up code")
    return tuple(codes)
