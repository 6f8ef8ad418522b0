"""Render the Asterisk configuration from the one source in the repo.

``config/asterisk/*.conf`` and ``dialplan/*.conf`` hold ``{{ name }}`` placeholders for the
values in :class:`ivr.settings.Settings` (ports, bind addresses, credentials). The same
renderer feeds the local Asterisk root (``ivr asterisk up``) and the Docker deployment
(``ivr asterisk render``), so the two cannot drift apart. Asterisk's own ``${...}`` and
``$[...]`` syntax never collides with ``{{ }}``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.errors import ConfigError
from ivr.settings import Settings

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class ConfigSources:
    """The directories the Asterisk configuration is built from."""

    asterisk: Path
    dialplan: Path

    @classmethod
    def of(cls, settings: Settings) -> ConfigSources:
        return cls(asterisk=settings.home / "config" / "asterisk", dialplan=settings.home / "dialplan")


def render_text(text: str, values: Mapping[str, Any], *, source: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            line = text.count("\n", 0, match.start()) + 1
            raise ConfigError(
                f"{source}:{line}: unknown placeholder {{{{ {name} }}}}",
                hint=f"known names: {', '.join(sorted(values))}",
            )
        return str(values[name])

    return PLACEHOLDER.sub(sub, text)


def render_config(settings: Settings, target: Path, sources: ConfigSources | None = None) -> list[Path]:
    """Write the rendered configuration into ``target`` (an ``/etc/asterisk``); return the files."""
    sources = sources or ConfigSources.of(settings)
    values = settings.flat()
    # Only our files: Debian's sample configs would otherwise configure modules we never load.
    if target.exists():
        for old in target.iterdir():
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    dialplan_target = target / "dialplan"
    dialplan_target.mkdir()
    for src_dir, dst_dir in ((sources.asterisk, target), (sources.dialplan, dialplan_target)):
        for src in sorted(src_dir.glob("*.conf")):
            dst = dst_dir / src.name
            dst.write_text(render_text(src.read_text(encoding="utf-8"), values, source=str(src)), encoding="utf-8")
            written.append(dst)
    return written
