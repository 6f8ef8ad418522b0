"""Where the Vosk model is: a directory, or a model shipped as a Python package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE_PREFIX = "package:"


class ModelNotFound(Exception):
    """The configured model is not installed or not a Vosk model directory."""


def resolve_model(value: str, home: Path) -> Path | None:
    """The model directory for ``[speech] model``; None when speech is switched off ("")."""
    value = value.strip()
    if not value:
        return None
    if value.startswith(PACKAGE_PREFIX):
        name = value[len(PACKAGE_PREFIX):]
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFound(f"[speech] model: the package {name!r} is not installed "
                                f"(pip install '.[speech]', or set a model directory)")
        path = Path(next(iter(spec.submodule_search_locations))) / "model"
    else:
        path = Path(value).expanduser()
        path = path if path.is_absolute() else home / path
    if not (path / "am").is_dir() and not (path / "final.mdl").exists():
        raise ModelNotFound(f"[speech] model: {path} is not a Vosk model directory (no am/ inside)")
    return path
