"""The journey store contract: one suite, every backend (memory, SQLite, PostgreSQL).

A test here states one behaviour the agent desktop, the router or the USSD gateway relies
on; a backend that fails one is wrong, whatever its own tests say.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from ivr.journey.codec import kv_text
from ivr.journey.errors import RequestInvalid, StoreClosed, WriteConflict
from ivr.journey.events import AGENT_CONNECTED
from ivr.journey.ports import ABSENT, JourneyStore, KvPut, StampedEvent
from ivr.journey.tokens import ContextClaim, TokenService

from .conftest import Backend, FakeClock

T0 = 1_700_000_000.0
CALLER = "79991234567"


def ev(at: float, type_: str = "node_entered", interaction: str = "call-1", channel: str = "voice",
       **data: object) -> StampedEvent:
    return StampedEvent(at, channel, interaction, type_, dict(data))


def agent(at: float, agent_id: object, interaction: str = "call-1") -> StampedEvent:
    return ev(at, AGENT_CONNECTED, interaction, agent=agent_id)


# -- append and recent ---------------------------------------------------------------------


async def test_recent_returns_the_newest_event_first(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0, node="main"), ev(T0 + 1, node="tariffs")])
    await store.append(CALLER, [ev(T0 + 2, node="operator")])

    assert [e.data["node"] for e in await store.recent(CALLER)] == ["operator", "tariffs", "main"]


async def test_events_sharing_a_timestamp_come_back_in_reverse_append_order(store: JourneyStore) -> None:
    # The voice driver stamps all events of one step with the same time.
    await store.append(CALLER, [ev(T0, "node_entered"), ev(T0, "key_pressed"), ev(T0, "route_chosen")])

    assert [e.type for e in await store.recent(CALLER)] == ["route_chosen", "key_pressed", "node_entered"]


async def test_recent_returns_at_most_limit_events(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0 + i, step=i) for i in range(10)])

    assert [e.data["step"] for e in await store.recent(CALLER, limit=3)] == [9, 8, 7]


async def test_recent_since_keeps_events_at_or_after_it(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0 + i, step=i) for i in range(5)])

    assert [e.data["step"] for e in await store.recent(CALLER, since=T0 + 3)] == [4, 3]


async def test_recent_only_returns_the_key_asked_for(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0, node="mine")])
    await store.append("79990000000", [ev(T0 + 1, node="theirs")])

    assert [e.data["node"] for e in await store.recent(CALLER)] == ["mine"]


async def test_recent_of_an_unknown_key_is_empty(store: JourneyStore) -> None:
    assert await store.recent("nobody") == []


async def test_recent_refuses_a_limit_below_one(store: JourneyStore) -> None:
    with pytest.raises(RequestInvalid, match="limit"):
        await store.recent(CALLER, limit=0)


async def test_an_event_comes_back_as_it_was_appended(store: JourneyStore) -> None:
    original = StampedEvent(T0 + 0.123456789, "ussd", "sess-9", "ussd_request",
                            {"code": "*100#", "text": "Баланс: 12,50 ₽", "screens": [1, 2.5, None, True],
                             "args": {"nested": {"deep": "yes"}}})
    await store.append(CALLER, [original])

    assert await store.recent(CALLER) == [original]


async def test_appending_no_events_stores_nothing(store: JourneyStore) -> None:
    await store.append(CALLER, [])

    assert await store.recent(CALLER) == []


async def test_a_batch_with_one_bad_event_is_refused_whole(store: JourneyStore) -> None:
    with pytest.raises(RequestInvalid, match="event 1"):
        await store.append(CALLER, [ev(T0, node="ok"), ev(T0, node=object())])

    assert await store.recent(CALLER) == []


async def test_an_event_with_a_non_finite_time_is_refused(store: JourneyStore) -> None:
    with pytest.raises(RequestInvalid, match="finite"):
        await store.append(CALLER, [ev(float("nan"))])


async def test_a_nul_character_in_event_text_is_replaced(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0, "speech_matched", text="bal\x00ance")])

    assert (await store.recent(CALLER))[0].data["text"] == "bal\ufffdance"


async def test_changing_a_returned_event_does_not_change_the_store(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0, node="main")])
    (await store.recent(CALLER))[0].data["node"] = "tampered"

    assert (await store.recent(CALLER))[0].data["node"] == "main"


# -- secrets are never stored --------------------------------------------------------------


async def test_a_pin_is_dropped_and_the_drop_recorded(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0, "input_collected", node="auth", var="pin", pin="1234")])

    [stored] = await store.recent(CALLER)
    assert stored.data == {"node": "auth", "var": "pin", "redacted": ["pin"]}


async def test_a_secret_inside_action_args_is_dropped(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0, "action_requested", name="block_card",
                                   args={"card": "last4:1234", "new_password": "hunter2"})])

    [stored] = await store.recent(CALLER)
    assert stored.data["args"] == {"card": "last4:1234"}
    assert stored.data["redacted"] == ["args.new_password"]


async def test_a_masked_event_keeps_only_its_structure(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0, "input_invalid", node="auth", masked=True, input="12", count=1)])

    [stored] = await store.recent(CALLER)
    assert stored.data == {"node": "auth", "masked": True, "count": 1, "redacted": ["input"]}


async def test_an_event_without_secrets_is_stored_unchanged(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0, "input_invalid", node="auth", input="***", pin_ok=False)])

    [stored] = await store.recent(CALLER)
    assert stored.data == {"node": "auth", "input": "***", "pin_ok": False}


# -- interactions and agents ---------------------------------------------------------------


async def test_interaction_events_are_that_interaction_oldest_first(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0, interaction="call-1", step=1), ev(T0 + 1, interaction="sms-7", step=2)])
    await store.append(CALLER, [ev(T0 + 2, interaction="call-1", step=3)])

    assert [e.data["step"] for e in await store.interaction_events("call-1")] == [1, 3]


async def test_interaction_events_of_an_unknown_interaction_are_empty(store: JourneyStore) -> None:
    assert await store.interaction_events("call-404") == []


async def test_last_agent_is_the_newest_agent_within_the_window(store: JourneyStore, clock: FakeClock) -> None:
    await store.append(CALLER, [agent(clock.now - 600, "anna"), agent(clock.now - 60, "boris")])

    assert await store.last_agent(CALLER, within_s=3600) == "boris"


async def test_last_agent_ignores_agents_outside_the_window(store: JourneyStore, clock: FakeClock) -> None:
    await store.append(CALLER, [agent(clock.now - 7200, "anna")])

    assert await store.last_agent(CALLER, within_s=3600) is None


async def test_last_agent_is_none_for_a_caller_never_connected(store: JourneyStore, clock: FakeClock) -> None:
    await store.append(CALLER, [ev(clock.now, "route_chosen", queue="sales")])

    assert await store.last_agent(CALLER, within_s=3600) is None


async def test_last_agent_skips_a_connection_that_names_no_agent(store: JourneyStore, clock: FakeClock) -> None:
    await store.append(CALLER, [agent(clock.now - 60, "anna"), ev(clock.now - 30, AGENT_CONNECTED)])

    assert await store.last_agent(CALLER, within_s=3600) == "anna"


async def test_last_agent_gives_a_numeric_agent_id_as_text(store: JourneyStore, clock: FakeClock) -> None:
    await store.append(CALLER, [agent(clock.now - 60, 1001)])

    assert await store.last_agent(CALLER, within_s=3600) == "1001"


async def test_last_agent_only_looks_at_the_key_asked_for(store: JourneyStore, clock: FakeClock) -> None:
    await store.append("79990000000", [agent(clock.now - 60, "anna")])

    assert await store.last_agent(CALLER, within_s=3600) is None


# -- time ranges across keys (reports, KPIs) -----------------------------------------------


async def test_between_returns_every_keys_events_in_the_range_oldest_first(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0 + 1, step=1), ev(T0 + 3, step=3)])
    await store.append("79990000000", [ev(T0 + 2, step=2, interaction="sms-7", channel="sms")])

    found = await store.between(T0, T0 + 10)

    assert [(key, e.data["step"]) for key, e in found] == [(CALLER, 1), ("79990000000", 2), (CALLER, 3)]


async def test_between_includes_since_and_excludes_until(store: JourneyStore) -> None:
    # Half-open: consecutive windows (a day, the next day) never count an event twice.
    await store.append(CALLER, [ev(T0 + i, step=i) for i in range(5)])

    assert [e.data["step"] for _, e in await store.between(T0 + 1, T0 + 3)] == [1, 2]


async def test_between_keeps_append_order_among_equal_timestamps_across_keys(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0, step=1)])
    await store.append("79990000000", [ev(T0, step=2)])
    await store.append(CALLER, [ev(T0, step=3)])

    assert [e.data["step"] for _, e in await store.between(T0, T0 + 1)] == [1, 2, 3]


async def test_between_returns_at_most_limit_events_the_oldest(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0 + i, step=i) for i in range(10)])

    assert [e.data["step"] for _, e in await store.between(T0, T0 + 10, limit=3)] == [0, 1, 2]


async def test_between_accepts_infinite_bounds(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0, step=1)])

    assert [e.data["step"] for _, e in await store.between(float("-inf"), float("inf"))] == [1]


async def test_between_an_empty_range_is_empty(store: JourneyStore) -> None:
    await store.append(CALLER, [ev(T0, step=1)])

    assert await store.between(T0 + 1, T0 + 1) == []


async def test_between_returns_events_as_they_were_appended(store: JourneyStore) -> None:
    original = StampedEvent(T0 + 0.5, "ussd", "sess-9", "ussd_request", {"code": "*100#", "screens": [1, None]})
    await store.append(CALLER, [original])

    assert await store.between(T0, T0 + 1) == [(CALLER, original)]


@pytest.mark.parametrize(("since", "until", "limit", "problem"), [
    (T0 + 1, T0, 10, "after"),
    (float("nan"), T0, 10, "since"),
    (T0, T0 + 1, 0, "limit"),
])
async def test_between_refuses_a_range_it_cannot_answer(store: JourneyStore, since: float, until: float,
                                                        limit: int, problem: str) -> None:
    with pytest.raises(RequestInvalid, match=problem):
        await store.between(since, until, limit=limit)


# -- the kv table --------------------------------------------------------------------------


async def test_kv_get_of_a_missing_entry_is_none(store: JourneyStore) -> None:
    assert await store.kv_get("ussd", "sess-1") is None


async def test_kv_put_then_get_returns_the_value(store: JourneyStore) -> None:
    await store.kv_put("ussd", "sess-1", {"node": "balance", "vars": {"lang": "ru"}}, ttl_s=60)

    assert await store.kv_get("ussd", "sess-1") == {"node": "balance", "vars": {"lang": "ru"}}


async def test_kv_put_replaces_the_whole_value(store: JourneyStore) -> None:
    await store.kv_put("ussd", "sess-1", {"node": "menu", "page": 2}, ttl_s=60)
    await store.kv_put("ussd", "sess-1", {"node": "balance"}, ttl_s=60)

    assert await store.kv_get("ussd", "sess-1") == {"node": "balance"}


async def test_kv_entry_expires_after_its_ttl(store: JourneyStore, clock: FakeClock) -> None:
    await store.kv_put("ussd", "sess-1", {"node": "menu"}, ttl_s=30)
    clock.advance(30)

    assert await store.kv_get("ussd", "sess-1") is None


async def test_kv_entry_is_visible_until_its_ttl(store: JourneyStore, clock: FakeClock) -> None:
    await store.kv_put("ussd", "sess-1", {"node": "menu"}, ttl_s=30)
    clock.advance(29.9)

    assert await store.kv_get("ussd", "sess-1") == {"node": "menu"}


async def test_kv_put_renews_the_ttl(store: JourneyStore, clock: FakeClock) -> None:
    await store.kv_put("ussd", "sess-1", {"step": 1}, ttl_s=30)
    clock.advance(20)
    await store.kv_put("ussd", "sess-1", {"step": 2}, ttl_s=30)
    clock.advance(20)

    assert await store.kv_get("ussd", "sess-1") == {"step": 2}


async def test_kv_delete_removes_the_entry(store: JourneyStore) -> None:
    await store.kv_put("ussd", "sess-1", {"node": "menu"}, ttl_s=60)
    await store.kv_delete("ussd", "sess-1")

    assert await store.kv_get("ussd", "sess-1") is None


async def test_kv_delete_of_a_missing_entry_is_not_an_error(store: JourneyStore) -> None:
    await store.kv_delete("ussd", "never-there")


async def test_kv_namespaces_do_not_share_keys(store: JourneyStore) -> None:
    await store.kv_put("ussd", "x", {"from": "ussd"}, ttl_s=60)
    await store.kv_put("token", "x", {"from": "token"}, ttl_s=60)

    assert await store.kv_get("ussd", "x") == {"from": "ussd"}


async def test_kv_get_text_is_the_stored_json_of_the_value(store: JourneyStore) -> None:
    await store.kv_put("ussd", "sess-1", {"node": "balance", "vars": {"lang": "ru"}}, ttl_s=60)

    text = await store.kv_get_text("ussd", "sess-1")

    assert text is not None and json.loads(text) == {"node": "balance", "vars": {"lang": "ru"}}


async def test_kv_get_text_of_a_missing_or_expired_entry_is_none(store: JourneyStore, clock: FakeClock) -> None:
    await store.kv_put("ussd", "sess-1", {"node": "menu"}, ttl_s=30)
    clock.advance(30)

    assert await store.kv_get_text("ussd", "sess-1") is None
    assert await store.kv_get_text("ussd", "never-there") is None


# -- kv puts and an append as one write ---------------------------------------------------


async def test_a_put_given_its_text_stores_that_text(store: JourneyStore) -> None:
    value = {"node": "balance", "inputs": ["1", "2"]}
    await store.put_and_append([KvPut("ussd", "sess-1", value, 60, kv_text(value))], CALLER, [])

    assert await store.kv_get("ussd", "sess-1") == value
    text = await store.kv_get_text("ussd", "sess-1")
    assert text is not None and json.loads(text) == json.loads(kv_text(value))


async def test_a_put_whose_text_is_not_a_json_object_writes_nothing(store: JourneyStore) -> None:
    with pytest.raises(RequestInvalid, match="kv_text"):
        await store.put_and_append([KvPut("ussd", "sess-1", {"step": 1}, 60, '["step", 1]')], CALLER, [ev(T0)])

    assert await store.kv_get("ussd", "sess-1") is None
    assert await store.recent(CALLER) == []


async def test_put_and_append_stores_the_entries_and_the_events(store: JourneyStore) -> None:
    await store.put_and_append([KvPut("ussd", "sess-1", {"step": 1}, 60), KvPut("ussd_resume", CALLER, {"s": 1}, 60)],
                               CALLER, [ev(T0, node="main"), ev(T0 + 1, node="tariffs")])

    assert await store.kv_get("ussd", "sess-1") == {"step": 1}
    assert await store.kv_get("ussd_resume", CALLER) == {"s": 1}
    assert [e.data["node"] for e in await store.recent(CALLER)] == ["tariffs", "main"]


async def test_put_and_append_with_a_refused_event_writes_nothing(store: JourneyStore) -> None:
    bad = StampedEvent(T0, "ussd", "sess-1", "ussd_screen", {"when": object()})

    with pytest.raises(RequestInvalid):
        await store.put_and_append([KvPut("ussd", "sess-1", {"step": 1}, 60)], CALLER, [ev(T0), bad])

    assert await store.kv_get("ussd", "sess-1") is None
    assert await store.recent(CALLER) == []


async def test_put_and_append_with_a_refused_put_writes_nothing(store: JourneyStore) -> None:
    with pytest.raises(RequestInvalid, match="ttl_s"):
        await store.put_and_append([KvPut("ussd", "sess-1", {"step": 1}, 60), KvPut("ussd", "sess-2", {}, 0)],
                                   CALLER, [ev(T0)])

    assert await store.kv_get("ussd", "sess-1") is None
    assert await store.recent(CALLER) == []


async def test_put_and_append_redacts_like_append(store: JourneyStore) -> None:
    await store.put_and_append([], CALLER, [ev(T0, "pin_entered", pin="1234", node="identify")])

    (stored,) = await store.recent(CALLER)
    assert "pin" not in stored.data and stored.data["redacted"] == ["pin"]


# -- compare-and-set puts -------------------------------------------------------------------


async def test_a_put_expecting_absent_creates_the_entry(store: JourneyStore) -> None:
    await store.put_and_append([KvPut("ussd", "sess-1", {"step": 1}, 60, expect=ABSENT)], CALLER, [ev(T0)])

    assert await store.kv_get("ussd", "sess-1") == {"step": 1}


async def test_a_put_expecting_absent_conflicts_with_a_live_entry_and_writes_nothing(store: JourneyStore) -> None:
    await store.kv_put("ussd", "sess-1", {"step": 1}, ttl_s=60)

    with pytest.raises(WriteConflict) as raised:
        await store.put_and_append([KvPut("ussd", "sess-1", {"step": 2}, 60, expect=ABSENT),
                                    KvPut("ussd_resume", CALLER, {"s": 1}, 60)], CALLER, [ev(T0)])

    assert (raised.value.namespace, raised.value.key) == ("ussd", "sess-1")
    assert await store.kv_get("ussd", "sess-1") == {"step": 1}
    assert await store.kv_get("ussd_resume", CALLER) is None
    assert await store.recent(CALLER) == []


async def test_a_put_expecting_absent_replaces_an_expired_entry(store: JourneyStore, clock: FakeClock) -> None:
    await store.kv_put("ussd", "sess-1", {"step": 1}, ttl_s=30)
    clock.advance(30)

    await store.put_and_append([KvPut("ussd", "sess-1", {"step": 2}, 60, expect=ABSENT)], CALLER, [])

    assert await store.kv_get("ussd", "sess-1") == {"step": 2}


async def test_a_put_expecting_the_text_read_replaces_it(store: JourneyStore) -> None:
    await store.kv_put("ussd", "sess-1", {"step": 1}, ttl_s=60)
    read = await store.kv_get_text("ussd", "sess-1")
    assert read is not None

    await store.put_and_append([KvPut("ussd", "sess-1", {"step": 2}, 60, expect=read)], CALLER, [ev(T0)])

    assert await store.kv_get("ussd", "sess-1") == {"step": 2}
    assert len(await store.recent(CALLER)) == 1


async def test_a_put_expecting_the_text_it_wrote_replaces_it(store: JourneyStore) -> None:
    first = {"step": 1, "inputs": ["1"]}
    await store.put_and_append([KvPut("ussd", "sess-1", first, 60, kv_text(first), expect=ABSENT)], CALLER, [])

    await store.put_and_append([KvPut("ussd", "sess-1", {"step": 2}, 60, expect=kv_text(first))], CALLER, [])

    assert await store.kv_get("ussd", "sess-1") == {"step": 2}


async def test_a_put_expecting_a_text_another_write_replaced_conflicts_and_writes_nothing(store: JourneyStore) -> None:
    await store.kv_put("ussd", "sess-1", {"step": 1}, ttl_s=60)
    read = await store.kv_get_text("ussd", "sess-1")
    assert read is not None
    await store.kv_put("ussd", "sess-1", {"step": 2, "by": "another process"}, ttl_s=60)

    with pytest.raises(WriteConflict):
        await store.put_and_append([KvPut("ussd", "sess-1", {"step": 2}, 60, expect=read)], CALLER, [ev(T0)])

    assert await store.kv_get("ussd", "sess-1") == {"step": 2, "by": "another process"}
    assert await store.recent(CALLER) == []


async def test_a_put_expecting_the_text_of_an_expired_entry_conflicts(store: JourneyStore, clock: FakeClock) -> None:
    await store.kv_put("ussd", "sess-1", {"step": 1}, ttl_s=30)
    read = await store.kv_get_text("ussd", "sess-1")
    assert read is not None
    clock.advance(30)

    with pytest.raises(WriteConflict):
        await store.put_and_append([KvPut("ussd", "sess-1", {"step": 2}, 60, expect=read)], CALLER, [])


async def test_when_one_of_two_conditions_fails_neither_put_is_written(store: JourneyStore) -> None:
    await store.kv_put("ussd", "taken", {"step": 1}, ttl_s=60)

    with pytest.raises(WriteConflict):
        await store.put_and_append([KvPut("ussd", "free", {"step": 1}, 60, expect=ABSENT),
                                    KvPut("ussd", "taken", {"step": 2}, 60, expect=ABSENT)], CALLER, [])

    assert await store.kv_get("ussd", "free") is None


async def test_a_conflicting_write_does_not_fail_the_writes_beside_it(store: JourneyStore) -> None:
    await store.kv_put("ussd", "taken", {"step": 1}, ttl_s=60)

    outcomes = await asyncio.gather(
        store.put_and_append([KvPut("ussd", "taken", {"step": 2}, 60, expect=ABSENT)], CALLER, [ev(T0, node="lost")]),
        store.put_and_append([KvPut("ussd", "free", {"step": 1}, 60, expect=ABSENT)], CALLER, [ev(T0, node="kept")]),
        return_exceptions=True)

    assert isinstance(outcomes[0], WriteConflict) and outcomes[1] is None
    assert [e.data["node"] for e in await store.recent(CALLER)] == ["kept"]


async def test_a_put_expecting_something_that_is_not_an_entry_text_is_refused(store: JourneyStore) -> None:
    with pytest.raises(RequestInvalid, match="expect"):
        await store.put_and_append([KvPut("ussd", "sess-1", {"step": 1}, 60, expect="step 1")], CALLER, [])


async def test_purge_expired_deletes_only_expired_entries(store: JourneyStore, clock: FakeClock) -> None:
    await store.kv_put("ussd", "old", {}, ttl_s=10)
    await store.kv_put("ussd", "new", {}, ttl_s=100)
    clock.advance(50)

    assert await store.purge_expired() == 1
    assert await store.kv_get("ussd", "new") == {}


@pytest.mark.parametrize("ttl_s", [0, -1, float("inf")])
async def test_kv_put_refuses_a_ttl_that_is_not_a_positive_duration(store: JourneyStore, ttl_s: float) -> None:
    with pytest.raises(RequestInvalid, match="ttl_s"):
        await store.kv_put("ussd", "sess-1", {}, ttl_s=ttl_s)


async def test_kv_put_refuses_a_value_that_is_not_an_object(store: JourneyStore) -> None:
    with pytest.raises(RequestInvalid, match="dict"):
        await store.kv_put("ussd", "sess-1", ["menu"], ttl_s=60)  # type: ignore[arg-type]


# -- tokens over the backend's kv ----------------------------------------------------------


async def test_a_context_token_resolves_through_the_store(store: JourneyStore, clock: FakeClock) -> None:
    tokens = TokenService(b"k" * 32, store, ttl_s=600, clock=clock)
    claim = ContextClaim(CALLER, "call-1", "roaming", 2, "pressed 2 then 0", "voice", journey_since=T0 - 86400)

    resolved = await tokens.resolve(await tokens.issue(claim))

    assert resolved == ContextClaim(CALLER, "call-1", "roaming", 2, "pressed 2 then 0", "voice", T0 - 86400,
                                    issued_at=clock.now, expires_at=clock.now + 600)


# -- lifecycle and what only a database guarantees ------------------------------------------


async def test_a_closed_store_refuses_appends(backend: Backend) -> None:
    store = await backend.open()
    await store.close()

    with pytest.raises(StoreClosed):
        await store.append(CALLER, [ev(T0)])


async def test_events_and_kv_survive_closing_and_reopening(backend: Backend) -> None:
    if not backend.persistent:
        pytest.skip(f"the {backend.name} store keeps nothing across processes")
    first = await backend.open()
    await first.append(CALLER, [ev(T0, node="main")])
    await first.kv_put("ussd", "sess-1", {"node": "menu"}, ttl_s=60)
    await first.close()

    second = await backend.open()
    try:
        assert [e.data["node"] for e in await second.recent(CALLER)] == ["main"]
        assert await second.kv_get("ussd", "sess-1") == {"node": "menu"}
    finally:
        await second.close()


async def test_two_stores_on_one_database_share_kv_entries(backend: Backend) -> None:
    # Two USSD gateway processes: a session's next request may reach the other one.
    if not backend.persistent:
        pytest.skip(f"the {backend.name} store is private to its process")
    one, other = await backend.open(), await backend.open()
    try:
        await one.kv_put("ussd", "sess-1", {"node": "menu"}, ttl_s=60)
        assert await other.kv_get("ussd", "sess-1") == {"node": "menu"}
    finally:
        await one.close()
        await other.close()


@pytest.mark.parametrize("statement", ["UPDATE journey_event SET type = 'x'", "DELETE FROM journey_event"])
async def test_the_database_refuses_to_change_stored_events(backend: Backend, statement: str) -> None:
    if backend.raw_sql is None:
        pytest.skip(f"the {backend.name} store has no database to bypass it with")
    store = await backend.open()
    try:
        await store.append(CALLER, [ev(T0, node="main")])
        with pytest.raises(Exception, match="append-only"):
            await backend.raw_sql(statement)
        assert [e.data["node"] for e in await store.recent(CALLER)] == ["main"]
    finally:
        await store.close()


async def test_kv_scan_lists_a_namespaces_live_entries_by_key(store: JourneyStore, clock: FakeClock) -> None:
    await store.kv_put("callback", "b", {"n": 2}, ttl_s=60)
    await store.kv_put("callback", "a", {"n": 1}, ttl_s=60)
    await store.kv_put("callback", "gone", {"n": 3}, ttl_s=1)
    await store.kv_put("other", "c", {"n": 4}, ttl_s=60)
    clock.advance(2)
    assert await store.kv_scan("callback") == [("a", {"n": 1}), ("b", {"n": 2})]
    assert await store.kv_scan("callback", limit=1) == [("a", {"n": 1})]
