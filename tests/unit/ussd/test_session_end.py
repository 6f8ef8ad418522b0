"""The aggregator's end-of-session notification (POST /ussd/events) in the journey.

A subscriber who walks away mid-menu must leave a trace an agent can read ("USSD session
broke off at Tariffs") and that the KPIs count as abandoned; one who finished gets the
aggregator's facts (status, screens, duration) and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.test_utils import TestClient

from ivr.agent.service import summarize
from ivr.crm.lookup import CrmLookup
from ivr.journey.errors import StoreUnavailable
from ivr.journey.kpi import fold
from ivr.journey.memory import MemoryJourney
from ivr.live.trees import TreeStore
from ivr.ussd import UssdConfig, UssdGateway
from ivr.ussd.auth import sign
from ivr.ussd.config import Auth
from tests.clock import FakeClock
from tests.unit.ussd.conftest import ANNA, UNKNOWN, CountingActions, Phone, serve

Client = TestClient[web.Request, web.Application]
ANNA_ID = "C-100231"


def notification(phone: Phone, status: str = "Incomplete", **changes: Any) -> dict[str, str]:
    fields = {"date": "2026-11-22 10:11:12", "sessionId": phone.session_id, "serviceCode": phone.code,
              "networkCode": "62120", "phoneNumber": phone.number, "status": status, "cost": "KES 0.00",
              "durationInMillis": "14250", "hopsCount": "3", "input": "*".join(phone.inputs),
              "lastAppResponse": "CON Tariffs", "errorMessage": ""}
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


async def test_a_session_that_broke_off_mid_menu_is_a_hangup_by_the_subscriber(
        ussd: Client, phone: Callable[..., Phone], journey: MemoryJourney) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")
    await anna.send("2")

    response = await ussd.post("/ussd/events", data=notification(anna))

    assert response.status == 200
    hangup, ended = journey.events(ANNA_ID)[-2:]
    assert (hangup.type, hangup.data["by"], hangup.data["node"]) == ("hangup", "caller", "tariffs")
    assert ended.type == "ussd_ended"
    assert ended.data == {"status": "incomplete", "code": "*111#", "node": "tariffs", "screens": 3,
                          "duration_s": 14.2}


async def test_a_broken_off_session_counts_as_abandoned(ussd: Client, phone: Callable[..., Phone],
                                                        journey: MemoryJourney) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")
    await ussd.post("/ussd/events", data=notification(anna))

    kpis = fold((ANNA_ID, e) for e in journey.events(ANNA_ID))
    assert (kpis.ended, kpis.abandoned) == (1, 1)


async def test_a_session_that_reached_its_end_screen_only_gets_the_aggregators_facts(
        ussd: Client, phone: Callable[..., Phone], journey: MemoryJourney) -> None:
    anna = phone(ANNA)
    await anna.dial("*100#")

    await ussd.post("/ussd/events", data=notification(anna, "Success"))

    events = journey.events(ANNA_ID)
    assert [e.type for e in events].count("hangup") == 1  # the balance screen's own, by the flow
    assert events[-1].type == "ussd_ended" and events[-1].data["status"] == "success"
    kpis = fold((ANNA_ID, e) for e in events)
    assert (kpis.ended, kpis.contained) == (1, 1)


async def test_the_agent_reads_where_the_session_broke_off(ussd: Client, phone: Callable[..., Phone],
                                                           journey: MemoryJourney) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")
    await anna.send("2")
    await ussd.post("/ussd/events", data=notification(anna))

    assert summarize(journey.events(ANNA_ID)[-1]) == "USSD session broke off at tariffs"


async def test_a_repeated_notification_is_stored_once(ussd: Client, phone: Callable[..., Phone],
                                                      journey: MemoryJourney) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")
    first = await ussd.post("/ussd/events", data=notification(anna))
    again = await ussd.post("/ussd/events", data=notification(anna))

    assert (first.status, again.status) == (200, 200)
    assert [e.type for e in journey.events(ANNA_ID)].count("ussd_ended") == 1


async def test_a_session_broken_off_can_still_be_continued(ussd: Client, phone: Callable[..., Phone]) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")
    await anna.send("2")
    await ussd.post("/ussd/events", data=notification(anna))

    again = await phone(ANNA).dial("*111#")

    assert again.startswith("CON You left a menu unfinished.\n1. Continue")


async def test_a_notification_for_a_session_never_seen_goes_to_the_customers_journey(
        ussd: Client, journey: MemoryJourney) -> None:
    response = await ussd.post("/ussd/events", data={"sessionId": "ATUid_gone", "serviceCode": "*111#",
                                                     "phoneNumber": ANNA, "status": "Failed",
                                                     "errorMessage": "MAP error\n\x00 system failure"})

    assert response.status == 200
    (ended,) = journey.events(ANNA_ID)
    assert ended.data == {"status": "failed", "code": "*111#", "error": "MAP error system failure"}


async def test_a_notification_for_someone_the_crm_does_not_know_goes_to_the_numbers_journey(
        ussd: Client, journey: MemoryJourney) -> None:
    await ussd.post("/ussd/events", data={"sessionId": "ATUid_x", "serviceCode": "*111#", "phoneNumber": UNKNOWN,
                                          "status": "Incomplete"})

    assert [e.type for e in journey.events(UNKNOWN)] == ["ussd_ended"]


async def test_a_notification_with_another_number_is_a_400(ussd: Client, phone: Callable[..., Phone]) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")

    response = await ussd.post("/ussd/events", data=notification(anna, phoneNumber=UNKNOWN))

    assert response.status == 400


async def test_an_unknown_status_is_a_400(ussd: Client, phone: Callable[..., Phone]) -> None:
    anna = phone(ANNA)
    await anna.dial("*111#")

    response = await ussd.post("/ussd/events", data=notification(anna, status="Done"))

    assert response.status == 400
    assert "status" in await response.text()


async def test_a_json_notification_with_numbers_as_numbers_is_read(ussd: Client, journey: MemoryJourney) -> None:
    response = await ussd.post("/ussd/events", json={"sessionId": "ATUid_j", "serviceCode": "*111#",
                                                     "phoneNumber": ANNA, "status": "Success",
                                                     "durationInMillis": 2000, "hopsCount": 1})

    assert response.status == 200
    assert journey.events(ANNA_ID)[-1].data["duration_s"] == 2.0


async def test_a_notification_the_store_cannot_take_is_a_503_so_the_aggregator_resends_it(
        config: UssdConfig, trees: TreeStore, lookup: CrmLookup, actions: CountingActions, clock: FakeClock) -> None:
    class Full(MemoryJourney):
        async def put_and_append(self, *args: Any) -> None:
            raise StoreUnavailable("memory", "write", OSError("disk full"))

    client = await serve(UssdGateway(config, trees, lookup, actions, Full(clock=clock), clock=clock))
    try:
        response = await client.post("/ussd/events", data={"sessionId": "ATUid_f", "serviceCode": "*111#",
                                                           "phoneNumber": ANNA, "status": "Incomplete"})
        assert response.status == 503
    finally:
        await client.close()


async def test_notifications_need_the_signature_when_a_secret_is_set(
        config: UssdConfig, trees: TreeStore, lookup: CrmLookup, actions: CountingActions,
        journey: MemoryJourney) -> None:
    secret = b"s" * 32
    client = await serve(UssdGateway(dataclasses.replace(config, auth=Auth(secret=secret)), trees, lookup, actions,
                                     journey))
    body = urlencode({"sessionId": "ATUid_s", "serviceCode": "*111#", "phoneNumber": ANNA,
                      "status": "Success"}).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    try:
        assert (await client.post("/ussd/events", data=body, headers=form)).status == 401
        signed = await client.post("/ussd/events", data=body, headers={**form, "X-IVR-Signature": sign(secret, body)})
        assert signed.status == 200
    finally:
        await client.close()
