"""What the fuzz tests share: the real composition on its own event loop, and a log watch."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ivr.composition import Controller, build_controller
from ivr.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


class Tracebacks(logging.Handler):
    """Every WARNING or worse that carries a traceback, from any logger (aiohttp's included)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "Traceback" in record.getMessage():
            self.records.append(record)


def composed(loop: asyncio.AbstractEventLoop, state: Path) -> tuple[Settings, Controller]:
    """The controller ``ivr serve`` builds, over a CRM and a journey of ``state``'s own."""
    configured = load_settings(env={"IVR_HOME": str(REPO), "IVR_CRM_SQLITE_PATH": str(state / "crm.sqlite"),
                                    "IVR_JOURNEY_SQLITE_PATH": str(state / "journey.sqlite"), "IVR_SPEECH_MODEL": ""})
    return configured, loop.run_until_complete(build_controller(configured))
