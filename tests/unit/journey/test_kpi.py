"""The KPIs folded from journey events: containment, routes, CRM lookups, the menu funnel.

Each case is a small journey as the drivers write it, and the number a contact-centre
manager would expect from it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from ivr.journey.errors import StoreClosed
from ivr.journey.kpi import MAX_LABEL_VALUES, OTHER, Histogram, KpiAccumulator, Kpis, NodeStats, fold
from ivr.journey.memory import MemoryJourney
from ivr.journey.metered import MeteredJourney
from ivr.journey.ports import JourneyStore, StampedEvent

T0 = 1_700_000_000.0
KEY = "C-1"


def ev(type_: str, interaction: str = "call-1", channel: str = "voice", at: float = T0, **data: object) -> StampedEvent:
    return StampedEvent(at, channel, interaction, type_, dict(data))


def kpis(*events: StampedEvent) -> Kpis:
    return fold((KEY, e) for e in events)


def routed(interaction: str = "call-1", queue: str = "support", reason: str = "caller asked for an operator",
           rules: Sequence[str] = ()) -> StampedEvent:
    return ev("route_decided", interaction, kind="queue", queue=queue, priority=1, reason=reason, rules=list(rules),
              agent_first="")


def flow_hangup(interaction: str = "call-1", node: str = "balance_said") -> StampedEvent:
    return ev("hangup", interaction, node=node, by="flow", reason="done")


def caller_hangup(interaction: str = "call-1", node: str = "main") -> StampedEvent:
    return ev("hangup", interaction, node=node, by="caller")


# -- outcomes and containment ---------------------------------------------------------------


def test_a_call_the_menu_finished_is_contained() -> None:
    k = kpis(ev("node_entered", node="main"), ev("key_pressed", node="main", key="1"), flow_hangup())

    assert (k.ended, k.contained, k.routed, k.abandoned) == (1, 1, 0, 0)


def test_a_call_routed_to_a_queue_is_not_contained() -> None:
    k = kpis(ev("node_entered", node="main"), routed(), ev("route_chosen", node="operator", queue="support"))

    assert (k.ended, k.contained, k.routed) == (1, 0, 1)


def test_a_call_abandoned_in_the_queue_is_abandoned_not_routed() -> None:
    k = kpis(routed(), ev("queue_abandoned", queue="support", hold_s=95))

    assert (k.ended, k.routed, k.abandoned, k.queue_abandons) == (1, 0, 1, 1)


def test_a_caller_hanging_up_mid_menu_is_abandoned_never_contained() -> None:
    k = kpis(ev("node_entered", node="main"), caller_hangup())

    assert (k.ended, k.contained, k.abandoned) == (1, 0, 1)


def test_a_call_the_routing_rules_turned_away_is_contained() -> None:
    # Blacklist, after hours: no agent was reached and the caller did not give up.
    k = kpis(ev("route_decided", kind="hangup", queue="support", priority=1, reason="blacklisted number",
                rules=["blacklist"], agent_first=""), flow_hangup())

    assert (k.contained, k.routed, k.routes) == (1, 0, {})


def test_containment_is_contained_over_ended() -> None:
    k = kpis(flow_hangup("a"), flow_hangup("b"), flow_hangup("c"), routed("d"))

    assert k.containment == 0.75


def test_containment_is_none_before_any_interaction_ended() -> None:
    assert kpis(ev("node_entered", node="main")).containment is None


def test_an_interaction_still_in_the_menu_has_not_ended() -> None:
    k = kpis(ev("node_entered", "a", node="main"), flow_hangup("b"))

    assert (k.ended, sum(k.interactions.values())) == (1, 2)


def test_a_channel_without_a_router_is_routed_by_its_route_chosen() -> None:
    k = kpis(ev("route_chosen", "sess-1", "ussd", node="operator", queue="support", priority=1, reason="asked"))

    assert (k.routed, k.routes) == (1, {("asked", "support"): 1})


def test_route_decided_overrules_an_earlier_route_chosen() -> None:
    k = kpis(ev("route_chosen", queue="support", reason="menu"), routed(queue="collections", reason="debt"))

    assert k.routes == {("debt", "collections"): 1}


def test_an_agent_answering_makes_the_call_routed() -> None:
    k = kpis(ev("agent_connected", agent="agent1", queue="support", hold_s=3))

    assert (k.routed, k.agent_connects) == (1, 1)


def test_one_answer_reported_twice_by_ami_counts_once() -> None:
    k = kpis(routed(), ev("agent_connected", agent="agent1", queue="support", hold_s=3),
             ev("agent_connected", agent="agent1", queue=""))

    assert k.agent_connects == 1


# -- channels -------------------------------------------------------------------------------


def test_interactions_are_counted_once_per_channel() -> None:
    k = kpis(ev("node_entered", "call-1", node="main"), ev("key_pressed", "call-1", node="main", key="1"),
             ev("ussd_request", "sess-1", "ussd", code="*100#"), ev("sms_received", "sms-1", "sms", text="BAL"),
             ev("sms_sent", "sms-1", "sms", text="12.50"))

    assert k.interactions == {"voice": 1, "ussd": 1, "sms": 1}


# -- routes ---------------------------------------------------------------------------------


def test_routes_are_counted_by_reason_and_queue() -> None:
    k = kpis(routed("a", "support", "operator"), routed("b", "support", "operator"), routed("c", "sales", "vip"))

    assert k.routes == {("operator", "support"): 2, ("vip", "sales"): 1}
    assert k.routes_by_reason == {"operator": 2, "vip": 1}


def test_routes_are_counted_by_rule() -> None:
    k = kpis(routed("a", rules=["vip", "region_spb"]), routed("b", rules=["vip"]))

    assert k.rules == {"vip": 2, "region_spb": 1}


def test_route_reasons_beyond_the_cap_are_counted_as_other() -> None:
    # Reasons are templates ("overdue 45 days"): they must not grow the metrics without bound.
    k = kpis(*(routed(f"c{i}", reason=f"overdue {i} days") for i in range(MAX_LABEL_VALUES + 5)))

    assert len(k.routes) == MAX_LABEL_VALUES + 1 and k.routes[(OTHER, OTHER)] == 5


# -- CRM -------------------------------------------------------------------------------------


def test_crm_lookups_are_counted_ok_and_unavailable() -> None:
    k = kpis(ev("caller_identified", "a", by="caller_id", customer="C-1", crm_ms=12.0),
             ev("crm_unavailable", "b", error="timeout", crm_ms=800.0))

    assert (k.crm_ok, k.crm_unavailable) == (1, 1)


def test_crm_latency_falls_in_the_histogram_bucket_of_its_upper_bound() -> None:
    k = kpis(ev("caller_identified", "a", crm_ms=10.0), ev("caller_identified", "b", crm_ms=10.5),
             ev("crm_unavailable", "c", crm_ms=9000))

    assert dict(k.crm_latency_ms.cumulative())[10] == 1
    assert dict(k.crm_latency_ms.cumulative())[25] == 2
    assert (k.crm_latency_ms.count, k.crm_latency_ms.sum) == (3, 9020.5)


def test_a_lookup_without_a_usable_latency_is_counted_but_not_timed() -> None:
    k = kpis(ev("caller_identified", crm_ms="fast"))

    assert (k.crm_ok, k.crm_latency_ms.count) == (1, 0)


def test_histogram_quantile_bound_is_the_bucket_holding_the_share() -> None:
    h = Histogram.empty((10, 100)).observe(5).observe(50).observe(60).observe(70)

    assert (h.quantile_bound(0.25), h.quantile_bound(0.5), h.quantile_bound(1.0)) == (10, 100, 100)


# -- the menu funnel -------------------------------------------------------------------------


def test_node_entries_are_counted_per_node() -> None:
    k = kpis(ev("node_entered", "a", node="main"), ev("node_entered", "b", node="main"),
             ev("node_entered", "b", node="tariffs"))

    assert (k.nodes["main"].entries, k.nodes["tariffs"].entries) == (2, 1)


def test_a_caller_hanging_up_at_a_node_is_a_dropoff_there() -> None:
    k = kpis(ev("node_entered", node="main"), ev("node_entered", node="tariffs"), caller_hangup(node="tariffs"))

    assert k.nodes["tariffs"] == NodeStats(entries=1, dropoffs=1) and k.nodes["main"].dropoffs == 0


def test_the_menu_hanging_up_is_not_a_dropoff() -> None:
    k = kpis(ev("node_entered", node="bye"), flow_hangup(node="bye"))

    assert k.nodes["bye"].dropoffs == 0


def test_no_input_and_no_match_are_counted_per_node() -> None:
    k = kpis(ev("no_input", node="main", count=1), ev("no_input", node="main", count=2),
             ev("input_invalid", node="main", input="9", count=1))

    assert (k.nodes["main"].no_input, k.nodes["main"].no_match) == (2, 1)


# -- live accumulation -----------------------------------------------------------------------


def test_the_accumulator_and_the_fold_agree() -> None:
    events = [ev("node_entered", node="main"), routed(), ev("queue_abandoned", queue="support")]
    acc = KpiAccumulator()
    for e in events:
        acc.add(KEY, e)

    assert acc.snapshot() == kpis(*events)


def test_a_snapshot_does_not_change_as_counting_goes_on() -> None:
    acc = KpiAccumulator()
    acc.add(KEY, ev("node_entered", node="main"))
    before = acc.snapshot()
    acc.add(KEY, ev("node_entered", "b", node="main"))

    assert before.nodes["main"].entries == 1


def test_a_forgotten_interaction_seen_again_counts_as_a_new_one() -> None:
    acc = KpiAccumulator(max_interactions=1)
    acc.add(KEY, ev("node_entered", "a", node="main"))
    acc.add(KEY, ev("node_entered", "b", node="main"))
    acc.add(KEY, ev("node_entered", "a", node="tariffs"))

    assert acc.snapshot().interactions == {"voice": 3}


# -- output ----------------------------------------------------------------------------------


def test_to_json_is_plain_json_with_routes_as_a_list() -> None:
    k = kpis(routed(reason="vip"), flow_hangup("b"))

    body = json.loads(k.to_json())
    assert body["routes"] == [{"reason": "vip", "queue": "support", "count": 1}] and body["containment"] == 0.5


def test_to_text_reports_containment_and_the_funnel() -> None:
    k = kpis(ev("node_entered", "a", node="main"), flow_hangup("a"), ev("node_entered", "b", node="main"),
             caller_hangup("b", node="main"))

    text = k.to_text()
    assert "50.0% contained" in text and "Menu funnel" in text
    assert any(line.split()[:3] == ["main", "2", "1"] for line in text.splitlines())


def test_to_text_of_no_events_still_reads() -> None:
    assert "Routes by reason: none" in Kpis().to_text()


# -- the metered store -----------------------------------------------------------------------


async def test_metered_journey_counts_what_it_stored() -> None:
    acc = KpiAccumulator()
    store: JourneyStore = MeteredJourney(MemoryJourney(), acc)

    await store.append(KEY, [ev("node_entered", node="main"), flow_hangup()])

    assert acc.snapshot().contained == 1 and len(await store.recent(KEY)) == 2


async def test_metered_journey_does_not_count_a_failed_append() -> None:
    inner = MemoryJourney()
    acc = KpiAccumulator()
    await inner.close()

    with pytest.raises(StoreClosed):
        await MeteredJourney(inner, acc).append(KEY, [flow_hangup()])
    assert acc.snapshot().events == 0


async def test_metered_journey_still_stores_when_counting_fails(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(KpiAccumulator):
        def add(self, key: str, event: StampedEvent) -> None:
            raise RuntimeError("bug in a KPI")

    inner = MemoryJourney()
    await MeteredJourney(inner, Broken()).append(KEY, [flow_hangup()])

    assert len(inner.events(KEY)) == 1 and "could not count" in caplog.text


async def test_metered_journey_delegates_reads_and_kv() -> None:
    inner = MemoryJourney()
    store = MeteredJourney(inner, KpiAccumulator())
    await store.append(KEY, [ev("agent_connected", agent="anna", at=1e10)])
    await store.kv_put("token", "t", {"x": 1}, ttl_s=60)

    assert await store.last_agent(KEY, within_s=1e11) == "anna"
    assert await store.kv_get("token", "t") == {"x": 1}
    assert [k for k, _ in await store.between(0, 2e10)] == [KEY]


def test_a_call_that_gave_up_in_the_queue_is_abandoned_and_still_listed_among_the_routes() -> None:
    """The report once read "routed 0" beside a routes table of one: both are right, and now say so."""
    from ivr.journey.ports import StampedEvent

    events = [("C-1", StampedEvent(1.0, "voice", "c1", "route_decided",
                                   {"kind": "queue", "queue": "support", "reason": "asked"})),
              ("C-1", StampedEvent(2.0, "voice", "c1", "queue_abandoned", {"queue": "support", "hold_s": 40}))]
    kpis = fold(events)
    text = kpis.to_text()
    assert (kpis.routed, kpis.abandoned, sum(kpis.routes.values())) == (0, 1, 1)
    assert "Routes by reason: 1 sent to a queue, whatever happened next (the abandoned included)" in text
    assert "(of them 1 gave up waiting in a queue)" in text


# -- other systems' events and staff reads ----------------------------------------------------------


def test_events_from_other_systems_count_as_interactions_of_their_channel() -> None:
    k = kpis(ev("page_viewed", "web:website:e-1", "web", text="Roaming"),
             ev("email_received", "email:helpdesk:m-1", "email", text="Bill question"),
             ev("node_entered", node="main"), flow_hangup())

    assert k.interactions == {"web": 1, "email": 1, "voice": 1}


def test_staff_reading_a_journey_is_not_an_interaction() -> None:
    k = kpis(ev("journey_read", "staff:helpdesk", "staff", staff="helpdesk", outcome="allowed"))

    assert (k.interactions, k.events) == ({}, 0)


def test_offers_convert_and_an_unanswered_one_counts_as_ignored() -> None:
    k = kpis(ev("offer_presented", "c1", node="offer", offer="roaming-7d"),
             ev("offer_answered", "c1", node="offer", offer="roaming-7d", answer="accepted"),
             ev("offer_presented", "c2", node="offer", offer="roaming-7d"),
             ev("offer_answered", "c2", node="offer", offer="roaming-7d", answer="declined"),
             ev("offer_presented", "c3", node="offer", offer="roaming-7d"))

    assert k.offers.offers["roaming-7d"].to_dict() == {"presented": 3, "accepted": 1, "declined": 1, "ignored": 1,
                                                       "conversion": 0.3333}
    assert "roaming-7d          3         1         1        1       33.3%" in k.to_text()


def test_each_interaction_counts_once_per_topic_on_its_channel() -> None:
    k = kpis(ev("node_entered", "c1", node="roaming", kind="menu", topic="roaming"),
             ev("node_entered", "c1", node="roaming", kind="menu", topic="roaming"),
             ev("node_entered", "u1", "ussd", node="roaming", kind="menu", topic="roaming"),
             ev("page_viewed", "web:site:e1", "web", topic="roaming", event_id="e1", client="site"))

    assert k.offers.topics == {"roaming": {"voice": 1, "ussd": 1, "web": 1}}
