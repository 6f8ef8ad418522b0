"""Two USSD gateways on one SQLite journey file: any of them serves the next request of a session.

Each gateway has its own store connection, CRM adapter and HTTP server, like two processes
behind the aggregator's load balancer; they share only the files. The session state lives
in the journey store's kv table, so a session started on one continues on the other, and a
retried confirmation reaching the other gateway still writes to the CRM once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ivr.crm.actions import CrmActions
from ivr.crm.lookup import CrmLookup
from ivr.crm.seed import seed_demo
from ivr.crm.sqlite_directory import SqliteDirectory
from ivr.journey.sqlite_store import SqliteJourneyStore
from ivr.ussd import UssdGateway
from tests.unit.ussd.conftest import ANNA, IVAN, CountingActions, Phone, demo_trees, serve
from tests.unit.ussd.conftest import ROOT as REPO

Client = TestClient[web.Request, web.Application]


@dataclass
class Process:
    client: Client
    journey: SqliteJourneyStore
    directory: SqliteDirectory
    actions: CountingActions


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[list[Process]]:
    from ivr.ussd import load_ussd_config

    seed_demo(tmp_path / "crm.db", pin_iterations=1000)
    config = load_ussd_config(REPO / "config/ussd.yaml", env={})
    started: list[Process] = []
    for _ in range(2):
        journey = await SqliteJourneyStore.open(tmp_path / "journey.db")
        directory = SqliteDirectory(tmp_path / "crm.db")
        lookup = CrmLookup(directory)
        actions = CountingActions(CrmActions(directory, on_change=lookup.forget))
        client = await serve(UssdGateway(config, demo_trees(), lookup, actions, journey))
        started.append(Process(client, journey, directory, actions))
    yield started
    for process in started:
        await process.client.close()
        await process.journey.close()
        process.directory.close()


def on(process: Process, phone: Phone) -> Phone:
    phone.client = process.client
    return phone


async def test_a_session_started_on_one_gateway_goes_on_on_the_other(processes: list[Process]) -> None:
    a, b = processes
    anna = Phone(a.client, ANNA)
    await anna.dial("*111#")
    assert (await on(b, anna).send("2")).startswith("CON Tariffs\n")
    assert (await on(a, anna).send("1")).startswith("CON Your tariff is Max.")


async def test_a_confirmation_retried_on_the_other_gateway_writes_once(processes: list[Process]) -> None:
    a, b = processes
    ivan = Phone(a.client, IVAN)
    await ivan.dial("*111#")
    await on(b, ivan).send("3")
    await on(a, ivan).send("1")
    done = await on(b, ivan).send("1")
    assert done.startswith("CON Done.")
    assert await on(a, ivan).post() == done
    assert a.actions.calls == [] and len(b.actions.calls) == 1
    keys = [e.data["key"] for e in await a.journey.interaction_events(ivan.session_id) if e.type == "key_pressed"]
    assert keys == ["3", "1", "1"]  # the retry answered on `a` stored no second step
    customer = await a.directory.by_number(IVAN)
    assert customer is not None and customer.services["caller_id"] is True


async def test_the_journey_of_a_session_served_by_both_is_one_interaction(processes: list[Process]) -> None:
    a, b = processes
    anna = Phone(a.client, ANNA)
    await anna.dial("*111#")
    await on(b, anna).send("1")
    events = await a.journey.interaction_events(anna.session_id)
    assert [e.type for e in events if e.type in ("ussd_request", "action_result")] == ["ussd_request",
                                                                                       "action_result"]
    assert sum(e.type == "ussd_screen" for e in events) == 2


async def test_a_broken_session_is_offered_on_the_other_gateway(processes: list[Process]) -> None:
    a, b = processes
    anna = Phone(a.client, ANNA)
    await anna.dial("*111#")
    tariffs = await anna.send("2")
    assert await on(b, anna).dial("*111#") == "CON You left a menu unfinished.\n1. Continue\n2. Start over"
    assert await on(a, anna).send("1") == tariffs


async def test_the_end_notification_reaching_the_other_gateway_finds_where_the_session_broke_off(
        processes: list[Process]) -> None:
    a, b = processes
    anna = Phone(a.client, ANNA)
    await anna.dial("*111#")
    await anna.send("2")

    response = await b.client.post("/ussd/events", data={
        "sessionId": anna.session_id, "serviceCode": "*111#", "phoneNumber": ANNA, "status": "Incomplete"})

    assert response.status == 200
    ended = await a.journey.interaction_events(anna.session_id)
    assert [(e.type, e.data.get("node")) for e in ended[-2:]] == [("hangup", "tariffs"), ("ussd_ended", "tariffs")]
