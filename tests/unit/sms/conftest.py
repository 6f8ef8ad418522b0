"""The SMS service over the demo CRM (seeded SQLite), an in-memory journey and a clock tests move.

``sms_client`` is an aiohttp test client with :func:`mount_sms` on 127.0.0.1 and a port the
system picks; ``kannel_query`` builds the query string Kannel's get-url produces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.crm.actions import CrmActions
from ivr.crm.customer import Customer
from ivr.crm.directory_ports import ActionOutcome
from ivr.crm.errors import CrmUnavailable
from ivr.crm.lookup import CrmLookup
from ivr.crm.sqlite_directory import SqliteDirectory
from ivr.journey.memory import MemoryJourney
from ivr.sms.config import SmsConfig, load_sms_config
from ivr.sms.kannel_http import mount_sms
from ivr.sms.sendsms import OutboundSms, SendReceipt
from ivr.sms.service import SmsService
from tests.clock import FakeClock
from tests.demo_actions import DEMO_ACTIONS

REPO = Path(__file__).resolve().parents[3]
SMS_YAML = REPO / "config" / "sms.yaml"

ANNA = "+79991234567"  # VIP, English, roaming on, tariff Max
IVAN = "+79992088812"  # debtor, English, roaming off, tariff Start
OLGA = "+79993119007"  # Russian speaker
UNKNOWN = "+79990001122"  # not a customer


class SwitchableDirectory:
    """The demo SQLite directory, with a switch that makes it behave like a CRM that is down."""

    def __init__(self, inner: SqliteDirectory) -> None:
        self.inner = inner
        self.down = False

    async def by_number(self, e164: str) -> Customer | None:
        if self.down:
            raise CrmUnavailable("connection refused", operation="by_number")
        return await self.inner.by_number(e164)

    async def by_account(self, account: str, pin: str) -> Customer | None:
        return await self.inner.by_account(account, pin)

    async def run_action(self, name: str, args: Mapping[str, Any], customer_id: str,
                         idempotency_key: str) -> ActionOutcome:
        if self.down:
            raise CrmUnavailable("connection refused", operation=name)
        return await self.inner.run_action(name, args, customer_id, idempotency_key)


class RecordingSender:
    """An SmsSender that keeps what it was given instead of sending it."""

    def __init__(self) -> None:
        self.sent: list[OutboundSms] = []

    async def send(self, sms: OutboundSms) -> SendReceipt:
        self.sent.append(sms)
        return SendReceipt(202, "0: Accepted for delivery")


@pytest.fixture(scope="session")
def sms_config() -> SmsConfig:
    return load_sms_config(SMS_YAML, known_actions=DEMO_ACTIONS)


@pytest.fixture
def sms_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def directory(demo_directory: SqliteDirectory) -> SwitchableDirectory:
    return SwitchableDirectory(demo_directory)


@pytest.fixture
def sms_journey(sms_clock: FakeClock) -> MemoryJourney:
    return MemoryJourney(clock=sms_clock)


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def service(sms_config: SmsConfig, directory: SwitchableDirectory, sms_journey: MemoryJourney,
            sender: RecordingSender, sms_clock: FakeClock) -> SmsService:
    lookup = CrmLookup(directory, cache_ttl_s=0.0001, negative_ttl_s=0.0001)
    actions = CrmActions(directory, on_change=lookup.forget)
    return SmsService(sms_config, lookup, actions, sms_journey, sender=sender, clock=sms_clock)


@pytest.fixture
async def sms_client(service: SmsService) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    mount_sms(app, service)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client


def with_config(service: SmsService, **changes: Any) -> SmsService:
    """The same collaborators with a changed configuration (security, limits...)."""
    config = dataclasses.replace(service.config, **changes)
    return SmsService(config, service.lookup, service.actions, service.journey, sender=service.sender,
                      clock=service.clock)


def kannel_query(sender: str = ANNA, text: str = "BAL", *, to: str = "1000", message_id: str = "m-1",
                 smsc: str = "fake", **extra: str) -> str:
    """What smsbox's get-url puts after ``/sms/kannel?`` (every value percent-encoded, UTF-8)."""
    fields = {"from": sender, "to": to, "text": text, "smsc": smsc, "id": message_id, **extra}
    return "&".join(f"{name}={quote(value, safe='')}" for name, value in fields.items())
