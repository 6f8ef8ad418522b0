"""Test doubles shared by the CRM unit tests: a clock that moves only when told, a scripted directory."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ivr.crm.customer import Customer
from ivr.crm.directory_ports import ActionOutcome


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeDirectory:
    """Answers from a dict; ``fail`` makes it raise, ``delay_s`` makes it slow. Counts calls."""

    def __init__(self, customers: Mapping[str, Customer] | None = None) -> None:
        self.customers = dict(customers or {})
        self.calls: list[str] = []
        self.fail: BaseException | None = None
        self.delay_s = 0.0
        self.answer: Any = None  # when set, returned instead of the dict lookup (garbage tests)
        self.actions: list[tuple[str, dict[str, Any], str, str]] = []
        self.outcome: ActionOutcome | None = None

    async def by_number(self, e164: str) -> Customer | None:
        self.calls.append(e164)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        if self.answer is not None:
            return self.answer
        return self.customers.get(e164)

    async def by_account(self, account: str, pin: str) -> Customer | None:
        return None

    async def run_action(self, name: str, args: Mapping[str, Any], customer_id: str,
                         idempotency_key: str) -> ActionOutcome:
        self.actions.append((name, dict(args), customer_id, idempotency_key))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        return self.outcome or ActionOutcome(name, True, {"done": True})


def anna(**changes: Any) -> Customer:
    fields: dict[str, Any] = {"id": "C-100231", "number": "+79991234567", "name": "Anna", "segment": "vip"}
    fields.update(changes)
    return Customer(**fields)
