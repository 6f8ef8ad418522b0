"""Two gateway processes on one journey store: the aggregator may send any request of a
session to either, and each keeps the records it answered in memory (answered unread).

Each "process" here is its own UssdGateway (its own record and walk caches, its own HTTP
server) over the journey store and CRM the two share.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ivr.crm.directory import SERVICE_ON
from ivr.crm.lookup import CrmLookup
from ivr.crm.sqlite_directory import SqliteDirectory
from ivr.flow.store import TreeStore
from ivr.gateway.ussd import UssdConfig, UssdGateway
from ivr.journey.memory import MemoryJourney
from tests.unit.gateway.conftest import FakeClock
from tests.unit.gateway.ussd.conftest import ANNA, IVAN, CountingActions, Phone, serve

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def other(config: UssdConfig, trees: TreeStore, lookup: CrmLookup, actions: CountingActions,
                journey: MemoryJourney, clock: FakeClock) -> AsyncIterator[Client]:
    """The second process: its own gateway over the same journey store and CRM."""
    client = await serve(UssdGateway(config, trees, lookup, actions, journey, clock=clock))
    yield client
    await client.close()


async def test_a_session_goes_on_where_the_other_process_left_it(ussd: Client, other: Client) -> None:
    handset = Phone(ussd, ANNA)
    await handset.dial("*111#")
    handset.client = other
    tariffs = await handset.send("2")
    handset.client = ussd

    reply = await handset.send("9")  # "Back", on the tariffs screen the other process showed

    assert tariffs.startswith("CON Tariffs")
    assert reply.startswith("CON Nova Telecom\n1. Balance")


async def test_a_retry_the_other_process_answered_gets_its_screen_one_journey_one_crm_call(
        ussd: Client, other: Client, actions: CountingActions, journey: MemoryJourney,
        directory: SqliteDirectory) -> None:
    handset = Phone(ussd, IVAN)
    await handset.dial("*111#")
    await handset.send("3")
    await handset.send("1")  # "turn caller ID on?": this process knows the session up to here
    handset.client = other
    answered = await handset.send("1")  # confirmed through the other process
    handset.client = ussd

    retried = await handset.post()  # the aggregator sends the same request here again

    assert retried == answered and answered.startswith("CON Done.")
    customer = await directory.by_number(IVAN)
    assert customer is not None and customer.services["caller_id"] is True
    keys = [e.data["key"] for e in journey.events("C-208812") if e.type == "key_pressed"]
    assert keys == ["3", "1", "1"]
    assert actions.count(SERVICE_ON) == 1  # checked before the action: the CRM is not asked again
