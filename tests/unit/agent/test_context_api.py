"""The context API for other systems and staff: signed events in, audited journeys out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.agent.access_config import AccessInvalid, Client, ContextAccess, Staff, load_context_access
from ivr.agent.context_api import mount_context_api
from ivr.agent.intake import EventIntake, IntakeRefused
from ivr.agent.signing import signed_headers
from ivr.agent.staff import AUDIT_KEY, StaffJourneys
from ivr.journey.memory import MemoryJourney
from tests.clock import T0, FakeClock

ROOT = Path(__file__).resolve().parents[3]
WEB_KEY = "w" * 32
ANNA = "+79991234567"
WEB = Client("website", WEB_KEY, frozenset({"web"}), rate_per_minute=5)
HELPDESK = Staff("helpdesk", "h" * 32, "helpdesk", frozenset({"journey.read"}))
SOCIAL = Staff("social", "s" * 32, "social_media", frozenset())
SUPERVISOR = Staff("supervisors", "v" * 32, "supervisor", frozenset({"journey.read", "audit.read"}))
ACCESS = ContextAccess({"website": WEB}, {s.name: s for s in (HELPDESK, SOCIAL, SUPERVISOR)})

Client_ = TestClient[web.Request, web.Application]


class Keys:
    """Anna's number is customer C-100231; any other number is nobody's."""

    def __init__(self) -> None:
        self.down = False

    async def key_for_number(self, number: str) -> str:
        if self.down:
            raise IntakeRefused(503, "unavailable", "the CRM cannot say")
        return "C-100231" if number == ANNA else number


@pytest.fixture
async def api(journey: MemoryJourney, clock: FakeClock) -> AsyncIterator[Client_]:
    app = web.Application()
    keys = Keys()
    mount_context_api(app, ACCESS, EventIntake(journey, keys, clock=clock), StaffJourneys(journey, keys, clock=clock),
                      clock=clock)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client


def event(**changes: Any) -> dict[str, Any]:
    return {"id": "e-1", "number": ANNA, "channel": "web", "kind": "page_viewed", "text": "Roaming prices",
            "link": "https://nova.example/roaming", **changes}


async def post(api: Client_, body: Any, *, key: str = WEB_KEY, client: str = "website", at: float = T0,
               raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else json.dumps(body).encode()
    resp = await api.post("/context/events", data=data, headers=signed_headers(client, key, data, at))
    return resp.status, await resp.json()


async def read(api: Client_, staff: Staff, path: str = "/context/customers/C-100231/journey") -> tuple[int, Any]:
    resp = await api.get(path, headers={"Authorization": f"Bearer {staff.key}", "X-IVR-User": "maria"})
    return resp.status, await resp.json()


# -- events in ----------------------------------------------------------------------------------


async def test_a_signed_event_is_stored_in_the_customers_journey(api: Client_, journey: MemoryJourney) -> None:
    status, body = await post(api, event())

    stored = await journey.recent("C-100231")
    assert (status, body["status"]) == (201, "stored")
    assert [(e.channel, e.type, e.data["text"], e.data["client"]) for e in stored] == [
        ("web", "page_viewed", "Roaming prices", "website")]


async def test_a_retried_event_is_stored_once(api: Client_, journey: MemoryJourney) -> None:
    first, second = await post(api, event()), await post(api, event())

    assert (first[0], second[0], second[1]["status"]) == (201, 200, "duplicate")
    assert len(await journey.recent("C-100231")) == 1


@pytest.mark.parametrize(("client", "key", "at"), [
    ("website", "x" * 32, T0),  # wrong key
    ("nobody", WEB_KEY, T0),  # unknown client
    ("website", WEB_KEY, T0 - 600),  # a replay after the allowed skew
])
async def test_any_signature_problem_is_the_same_401(api: Client_, client: str, key: str, at: float) -> None:
    assert await post(api, event(), client=client, key=key, at=at) == (401, {"error": "unauthorized"})


@pytest.mark.parametrize(("changes", "status", "field"), [
    ({"channel": "email", "kind": "email_received"}, 403, "channel"),
    ({"kind": "chat_message"}, 422, "kind"),
    ({"kind": "page_vewed"}, 422, "kind"),
    ({"number": None, "customer": None}, 422, "customer"),
    ({"customer": "C-1"}, 422, "customer"),
    ({"number": "call me"}, 422, "number"),
    ({"link": "javascript:alert(1)"}, 422, "link"),
    ({"text": "x" * 1001}, 422, "text"),
    ({"at": "2026-12-05T10:00:00"}, 422, "at"),
    ({"at": T0 - 40 * 86400}, 422, "at"),
    ({"id": "bad id with spaces"}, 422, "id"),
    ({"colour": "red"}, 422, "colour"),
])
async def test_an_event_that_does_not_fit_says_which_field(api: Client_, changes: dict[str, Any], status: int,
                                                         field: str) -> None:
    answer = await post(api, {k: v for k, v in event(**changes).items() if v is not None})

    assert (answer[0], answer[1].get("field")) == (status, field)


async def test_control_characters_in_the_text_become_spaces(api: Client_, journey: MemoryJourney) -> None:
    await post(api, event(text="Roaming\x07\u202eprices\x00\n"))

    assert (await journey.recent("C-100231"))[0].data["text"] == "Roaming prices"


async def test_a_client_over_its_rate_is_told_when_to_come_back(api: Client_) -> None:
    answers = [await post(api, event(id=f"e-{i}")) for i in range(6)]

    assert [a[0] for a in answers] == [201] * 5 + [429]


async def test_a_body_that_is_not_json_is_a_422(api: Client_) -> None:
    assert (await post(api, None, raw=b"{not json"))[0] == 422


async def test_an_event_for_an_unknown_number_goes_to_the_numbers_journey(api: Client_,
                                                                          journey: MemoryJourney) -> None:
    await post(api, event(number="+79990001122"))

    assert len(await journey.recent("+79990001122")) == 1


# -- staff reads ----------------------------------------------------------------------------------


async def test_the_helpdesk_reads_a_journey_by_customer_id_and_the_read_is_audited(api: Client_,
                                                                                  journey: MemoryJourney) -> None:
    await post(api, event())

    status, body = await read(api, HELPDESK)

    audit = await journey.recent(AUDIT_KEY)
    assert status == 200 and [e["summary"] for e in body["journey"]] == ["opened 'Roaming prices'"]
    assert [(a.data["staff"], a.data["user"], a.data["customer"], a.data["outcome"], a.data["events"])
            for a in audit] == [("helpdesk", "maria", "C-100231", "allowed", 1)]


async def test_by_number_reads_the_same_journey(api: Client_) -> None:
    await post(api, event())

    status, body = await read(api, HELPDESK, f"/context/numbers/{ANNA}/journey")

    assert (status, body["customer_key"]) == (200, "C-100231")


async def test_a_role_without_journey_read_is_refused_and_the_attempt_is_audited(api: Client_,
                                                                                journey: MemoryJourney) -> None:
    status, _ = await read(api, SOCIAL)

    assert status == 403
    assert [a.data["outcome"] for a in await journey.recent(AUDIT_KEY)] == ["refused"]


async def test_an_unknown_key_reads_nothing(api: Client_) -> None:
    resp = await api.get("/context/customers/C-100231/journey", headers={"Authorization": "Bearer guess"})

    assert (resp.status, await resp.json()) == (401, {"error": "unauthorized"})


async def test_the_audit_trail_is_for_supervisors_only(api: Client_) -> None:
    await read(api, HELPDESK)

    refused = await read(api, HELPDESK, "/context/staff/audit")
    status, body = await read(api, SUPERVISOR, "/context/staff/audit")

    assert refused[0] == 403 and status == 200
    assert [a["outcome"] for a in body["audit"]] == ["refused", "allowed"]


# -- the file ---------------------------------------------------------------------------------------


def test_the_shipped_file_enables_only_the_entries_whose_key_is_set() -> None:
    access = load_context_access(ROOT / "config/context.yaml", {"IVR_CONTEXT_KEY_WEBSITE": "k" * 32,
                                                               "IVR_STAFF_KEY_SOCIAL": "s" * 32})

    assert set(access.clients) == {"website"} and access.clients["website"].channels == {"web"}
    assert set(access.staff) == {"social_media_team"} and access.staff["social_media_team"].permissions == set()
    assert len(access.disabled) == 4


@pytest.mark.parametrize(("change", "message"), [
    (("channels: [web]", "channels: [fax]"), "channel 'fax' is not one other systems write"),
    (("[journey.read]\n", "[journey.write]\n"), "unknown permission 'journey.write'"),
    (("role: helpdesk", "role: help_desk"), "unknown role 'help_desk'"),
])
def test_each_mistake_in_the_file_is_named_at_its_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "context.yaml"
    path.write_text((ROOT / "config/context.yaml").read_text().replace(*change, 1))

    with pytest.raises(AccessInvalid) as refused:
        load_context_access(path, {"IVR_CONTEXT_KEY_WEBSITE": "k" * 32, "IVR_STAFF_KEY_HELPDESK": "h" * 32})

    assert any(message in str(p) and str(p).startswith(f"{path}:") for p in refused.value.problems)


def test_a_short_key_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(AccessInvalid, match="shorter than 16 characters"):
        load_context_access(ROOT / "config/context.yaml", {"IVR_CONTEXT_KEY_WEBSITE": "short"})


@pytest.mark.parametrize(("path", "field"), [
    ("/context/customers/C%201%3Cscript%3E/journey", "customer"),
    ("/context/numbers/call-me/journey", "number"),
])
async def test_a_staff_read_of_something_that_is_not_an_id_or_a_number_is_a_422(api: Client_, path: str,
                                                                             field: str) -> None:
    status, body = await read(api, HELPDESK, path)

    assert (status, body["field"]) == (422, field)
