"""Named actions answered from the caller context alone, until a CRM is configured."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult
from ivr.flow.simulate import DemoActionRunner


class DemoActions:
    def __init__(self) -> None:
        self._runner = DemoActionRunner()

    async def run(self, name: str, args: Mapping[str, Any], context: CallerContext,
                  *, interaction: str) -> ActionResult:
        return self._runner.run(name, args, context)
