"""The agent writes back: notes and wrap-up codes, transfers, an expert pulled in (ivr.agent.desk)."""

from __future__ import annotations

import pytest

from ivr.agent.desk import MAX_NOTE_CHARS, AgentDesk, RequestRefused, destination
from ivr.agent.wrapup import WrapupCodes
from ivr.errors import CallControlError
from ivr.journey.memory import MemoryJourney

from .conftest import CALL, CUSTOMER, T0, FakeClock, claim

QUEUES = frozenset({"support", "collections", "experts"})
CODES = WrapupCodes(("resolved", "escalated"), {"collections": ("promise-to-pay", "paid")})


class FakeControl:
    def __init__(self, refuse: str = "") -> None:
        self.calls: list[tuple[str, ...]] = []
        self.refuse = refuse

    async def transfer(self, interaction: str, agent: str, to: str, reason: str, kind: str = "queue") -> None:
        self._check()
        self.calls.append(("transfer", interaction, agent, to, reason, kind))

    async def consult(self, interaction: str, agent: str, to: str) -> str:
        self._check()
        self.calls.append(("consult", interaction, agent, to))
        return f"ivr-{interaction}-consult"

    async def conference(self, interaction: str, agent: str) -> None:
        self._check()
        self.calls.append(("conference", interaction, agent))

    def _check(self) -> None:
        if self.refuse:
            raise CallControlError(self.refuse)


def desk(journey: MemoryJourney, control: FakeControl | None = None) -> AgentDesk:
    return AgentDesk(journey, CODES, control=control, queues=QUEUES, clock=FakeClock(T0 + 5))


async def test_a_note_is_stored_in_the_customers_journey_on_the_interaction(journey: MemoryJourney) -> None:
    await desk(journey).note(claim(), {"agent": "agent3", "text": "Will pay Friday", "wrapup": "promise-to-pay"})

    [event] = await journey.recent(CUSTOMER)
    assert (event.at, event.interaction, event.type) == (T0 + 5, CALL, "agent_note")
    assert event.data == {"agent": "agent3", "text": "Will pay Friday", "wrapup": "promise-to-pay",
                          "queue": "collections"}


async def test_card_numbers_and_spelled_out_secrets_never_reach_the_journey(journey: MemoryJourney) -> None:
    note = await desk(journey).note(claim(), {"agent": "agent3", "text": "card 4111-1111-1111-1111, pin is 4821"})

    [event] = await journey.recent(CUSTOMER)
    assert "4111" not in event.data["text"] and "4821" not in event.data["text"]
    assert event.data["redacted"] == ["card number", "pin"] and note.redacted == ("card number", "pin")


async def test_control_characters_are_dropped_and_line_breaks_kept(journey: MemoryJourney) -> None:
    note = await desk(journey).note(claim(), {"agent": "agent3", "text": "line one\x1b[31m\nline\x00 two\u202e"})

    assert note.text == "line one[31m\nline two"


@pytest.mark.parametrize(("body", "field"), [
    ({"agent": "agent3", "text": "x" * (MAX_NOTE_CHARS + 1)}, "text"),
    ({"agent": "agent3", "text": 42}, "text"),
    ({"agent": "agent 3; DROP", "text": "hi"}, "agent"),
    ({"text": "hi"}, "agent"),
    ({"agent": "agent3"}, "text"),  # neither text nor a wrap-up code
    ({"agent": "agent3", "text": "hi", "wrapup": "resolved"}, "wrapup"),  # not on collections' list
])
async def test_a_note_that_is_not_valid_is_refused_with_the_field(journey: MemoryJourney, body, field) -> None:
    with pytest.raises(RequestRefused) as refused:
        await desk(journey).note(claim(), body)

    assert refused.value.field == field
    assert await journey.recent(CUSTOMER) == []


async def test_a_wrong_wrapup_code_is_refused_with_the_queues_list(journey: MemoryJourney) -> None:
    with pytest.raises(RequestRefused) as refused:
        await desk(journey).note(claim(), {"agent": "agent3", "wrapup": "sold"})

    assert refused.value.to_dict()["allowed"] == ["promise-to-pay", "paid"]


async def test_a_queue_without_its_own_list_takes_the_default_codes(journey: MemoryJourney) -> None:
    note = await desk(journey).note(claim(queue="support"), {"agent": "agent1", "wrapup": "resolved"})

    assert note.wrapup == "resolved"


@pytest.mark.parametrize(("to", "dialled"), [
    ("experts", "experts"),
    ("agent:agent2", "agent2"),
    ("+79990001122", "+79990001122"),
    ("88125550000", "88125550000"),
])
def test_a_destination_is_what_the_transfer_context_dials(to, dialled) -> None:
    assert destination(to, QUEUES) == dialled


@pytest.mark.parametrize("to", ["expert", "agent:", "agent:../x", "+7 999", "", None, ["experts"], "sip:x@y"])
def test_a_destination_that_names_nothing_is_refused(to) -> None:
    with pytest.raises(RequestRefused) as refused:
        destination(to, QUEUES)

    assert refused.value.field == "to"


async def test_a_blind_transfer_goes_to_call_control_with_the_reason(journey: MemoryJourney) -> None:
    control = FakeControl()

    result = await desk(journey, control).transfer(claim(), {"agent": "agent3", "to": "experts",
                                                             "reason": "tariff dispute"})

    assert result == {"status": "transferred", "to": "experts"}
    assert control.calls == [("transfer", CALL, "agent3", "experts", "tariff dispute", "queue")]


async def test_an_attended_transfer_starts_a_consultation(journey: MemoryJourney) -> None:
    control = FakeControl()

    result = await desk(journey, control).transfer(claim(), {"agent": "agent3", "to": "agent:agent2",
                                                             "mode": "attended"})

    assert result["status"] == "consulting" and control.calls == [("consult", CALL, "agent3", "agent2")]


async def test_what_the_pbx_refuses_comes_back_as_call_control_error(journey: MemoryJourney) -> None:
    with pytest.raises(CallControlError, match="not on this call"):
        await desk(journey, FakeControl("agent9 is not on this call")).conference(claim(), {"agent": "agent9"})


async def test_a_ussd_session_cannot_be_transferred(journey: MemoryJourney) -> None:
    with pytest.raises(RequestRefused) as refused:
        await desk(journey, FakeControl()).transfer(claim(channel="ussd"), {"agent": "a", "to": "experts"})

    assert refused.value.field == "token"
