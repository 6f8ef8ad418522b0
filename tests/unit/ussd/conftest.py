"""The USSD gateway over the demo menus, the demo CRM (SQLite, seeded) and an in-memory journey.

``phone`` posts requests the way an Africa's Talking aggregator does: every input of the
session so far joined with ``*``. The clock (from the gateway conftest) moves only when a
test says so; the journey and the gateway share it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.crm.actions import CrmActions
from ivr.crm.lookup import CrmLookup
from ivr.crm.sqlite_directory import SqliteDirectory
from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult
from ivr.flow.loader import load_tree
from ivr.journey.memory import MemoryJourney
from ivr.live.trees import TreeStore
from ivr.ussd import UssdConfig, UssdGateway, load_ussd_config, mount_ussd
from tests.clock import FakeClock
from tests.demo_actions import DEMO_ACTIONS

ROOT = Path(__file__).resolve().parents[3]
ANNA = "+79991234567"  # VIP, every service on, English
IVAN = "+79992088812"  # debtor, every service off
UNKNOWN = "+79990000001"

Client = TestClient[web.Request, web.Application]


class CountingActions:
    """The real CRM actions, counted: a test can tell "ran once" from "ran twice"."""

    def __init__(self, inner: CrmActions) -> None:
        self.inner = inner
        self.calls: list[tuple[str, dict[str, Any], str]] = []

    async def run(self, name: str, args: Mapping[str, Any], context: CallerContext, *,
                  interaction: str) -> ActionResult:
        self.calls.append((name, dict(args), interaction))
        return await self.inner.run(name, args, context, interaction=interaction)

    def count(self, name: str) -> int:
        return sum(1 for call in self.calls if call[0] == name)


def demo_trees() -> TreeStore:
    return TreeStore(lambda: load_tree(ROOT / "config/menus", numbers=ROOT / "config/numbers.yaml",
                                       known_actions=DEMO_ACTIONS))


@pytest.fixture(scope="session")
def trees() -> TreeStore:
    return demo_trees()


@pytest.fixture(scope="session")
def shipped_config() -> UssdConfig:
    return load_ussd_config(ROOT / "config/ussd.yaml", env={})


@pytest.fixture
def config(shipped_config: UssdConfig) -> UssdConfig:
    return shipped_config


@pytest.fixture
def directory(demo_directory: SqliteDirectory) -> SqliteDirectory:
    return demo_directory


@pytest.fixture
def lookup(directory: SqliteDirectory) -> CrmLookup:
    return CrmLookup(directory)


@pytest.fixture
def actions(directory: SqliteDirectory, lookup: CrmLookup) -> CountingActions:
    return CountingActions(CrmActions(directory, on_change=lookup.forget))


@pytest.fixture
def gateway(config: UssdConfig, trees: TreeStore, lookup: CrmLookup, actions: CountingActions,
            journey: MemoryJourney, clock: FakeClock) -> UssdGateway:
    return UssdGateway(config, trees, lookup, actions, journey, clock=clock)


async def serve(gateway: UssdGateway) -> Client:
    app = web.Application()
    mount_ussd(app, gateway)
    client: Client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    return client


@pytest.fixture
async def ussd(gateway: UssdGateway) -> AsyncIterator[Client]:
    client = await serve(gateway)
    yield client
    await client.close()


_sessions = itertools.count(1)


class Phone:
    """A subscriber on a handset, through the aggregator: one session at a time."""

    def __init__(self, client: Client, number: str = ANNA, *, network: str = "62120") -> None:
        self.client = client
        self.number = number
        self.network = network
        self.session_id = ""
        self.code = ""
        self.inputs: list[str] = []
        self.status = 0

    async def dial(self, code: str, *, session_id: str | None = None) -> str:
        self.session_id = session_id or f"ATUid_test_{next(_sessions)}"
        self.code = code
        self.inputs = []
        return await self.post()

    async def send(self, *inputs: str) -> str:
        self.inputs.extend(inputs)
        return await self.post()

    async def post(self, text: str | None = None) -> str:
        form = {"sessionId": self.session_id, "serviceCode": self.code, "phoneNumber": self.number,
                "networkCode": self.network, "text": "*".join(self.inputs) if text is None else text}
        response = await self.client.post("/ussd", data=form)
        self.status = response.status
        return await response.text()


@pytest.fixture
def phone(ussd: Client) -> Callable[..., Phone]:
    return lambda number=ANNA: Phone(ussd, number)


def with_changes(config: UssdConfig, **sections: Any) -> UssdConfig:
    """``config`` with some sections replaced field by field: ``limits={"deadline_s": 0.3}``."""
    changes = {name: dataclasses.replace(getattr(config, name), **fields) for name, fields in sections.items()}
    return dataclasses.replace(config, **changes)


def screen(reply: str) -> str:
    """The screen of a ``CON``/``END`` reply."""
    assert reply[:4] in ("CON ", "END "), reply
    return reply[4:]
