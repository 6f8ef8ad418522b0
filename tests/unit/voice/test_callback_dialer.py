"""The callback dialer against a fake AMI: places in queue order, results into records, never twice."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ivr.callbacks.book import CallbackBook
from ivr.callbacks.policy import CallbackPolicy, QueuePolicy
from ivr.callbacks.record import CANCELLED, COMPLETED, FAILED, RINGING, WAITING, Callback
from ivr.journey.lease import Lease
from ivr.journey.memory import MemoryJourney
from ivr.voice.callback_dialer import CallbackDialer, whisper_text
from ivr.voice.queue_monitor import QueueMonitor, keep_fresh

NOW = 1_800_000_000.0
POLICY = CallbackPolicy(QueuePolicy(attempts=2, retry_after_s=60))
CUSTOMER_FIRST = CallbackPolicy(QueuePolicy(attempts=2, retry_after_s=60, mode="customer_first"))
PLACE = "Local/cb1@ivr-callback-hold-00000001;1"


@dataclass
class FakeAmi:
    entries: list[dict[str, str]] = field(default_factory=list)
    db: dict[str, str] = field(default_factory=dict)
    channels: list[str] = field(default_factory=list)
    sent: list[dict[str, str]] = field(default_factory=list)

    async def queue_status(self) -> list[dict[str, str]]:
        return [{"Event": "QueueParams", "Queue": "support", "Holdtime": "0", "TalkTime": "0"},
                *({"Event": "QueueEntry", "Queue": "support", **e} for e in self.entries)]

    async def action(self, action, timeout: float = 10.0):
        self.sent.append(dict(action))
        return {"Response": "Success"}

    async def db_tree(self, family: str) -> dict[str, str]:
        return dict(self.db)

    async def db_del(self, family: str, key: str) -> None:
        self.db.pop(key, None)

    async def channel_names(self) -> list[str]:
        return list(self.channels)

    def originated(self) -> list[dict[str, str]]:
        return [a for a in self.sent if a["Action"] == "Originate"]


@dataclass
class Texts:
    missed_for: list[str] = field(default_factory=list)

    async def booked(self, callback: Callback, opens_at: float | None) -> None: ...

    async def missed(self, callback: Callback) -> None:
        self.missed_for.append(callback.id)


def callback(cb_id: str = "cb1", *, place_at: float = NOW - 50, priority: int = 0, **kw) -> Callback:
    fields = {"key": "C-1", "number": "+79990001102", "queue": "support", "priority": priority, "reason": "asked",
              "channel": "voice", "interaction": "call-1", "requested_at": place_at, "place_at": place_at,
              "due_at": place_at, **kw}
    return Callback(id=cb_id, **fields)


async def setup(*callbacks: Callback, ami: FakeAmi | None = None, clock: list[float] | None = None,
                policy: CallbackPolicy = POLICY, is_open=lambda _queue, _now: True):
    store = MemoryJourney()
    book = CallbackBook(store, clock=lambda: NOW)
    for cb in callbacks:
        await book.add(cb, "callback_requested", {})
    ami = ami or FakeAmi()
    now = clock or [NOW]
    texts = Texts()
    monitor = QueueMonitor(ami, clock=lambda: now[0])
    dialer = CallbackDialer(ami, book, monitor, lambda: policy, confirmations=texts, clock=lambda: now[0],
                            is_open=is_open)
    return dialer, ami, book, store, texts


def caller(position: int, wait_s: int, priority: int = 0, name: str = "PJSIP/demo-trunk-1") -> dict[str, str]:
    return {"Position": str(position), "Channel": name, "Uniqueid": f"u{position}", "Wait": str(wait_s),
            "Priority": str(priority)}


def position_of(originate: dict[str, str]) -> int:
    return int(dict(v.split("=", 1) for v in originate["Variable"].split(","))["IVR_CB_POSITION"])


async def test_a_callback_goes_in_behind_those_who_joined_before_it_and_ahead_of_later_ones() -> None:
    ami = FakeAmi(entries=[caller(1, 100), caller(2, 10, name="PJSIP/demo-trunk-2")])
    dialer, ami, *_ = await setup(callback(place_at=NOW - 50), ami=ami)

    await dialer.reconcile()

    [originate] = ami.originated()
    assert position_of(originate) == 2
    assert originate["Channel"] == "Local/cb1@ivr-callback-hold/n" and originate["ChannelId"] == "cb1-1"


async def test_a_caller_seen_joining_half_a_second_before_the_request_stays_ahead() -> None:
    # QueueStatus says both waited 0 s; the QueueCallerJoin events say who came first.
    ami = FakeAmi(entries=[caller(1, 0), caller(2, 0, name="PJSIP/demo-trunk-2")])
    now = [NOW - 0.5]
    dialer, ami, *_ = await setup(callback(place_at=NOW), ami=ami, clock=now)
    dialer.monitor.on_event({"Event": "QueueCallerJoin", "Uniqueid": "u1"})
    now[0] = NOW + 0.3
    dialer.monitor.on_event({"Event": "QueueCallerJoin", "Uniqueid": "u2"})
    now[0] = NOW + 0.6

    await dialer.reconcile()

    assert position_of(ami.originated()[0]) == 2


async def test_without_a_join_event_a_whole_second_of_wait_counts_from_its_middle() -> None:
    # Wait 1 means joined 1.0-1.999 s before the poll: taken as 1.5 s, so a request 1.2 s
    # before the poll falls behind it, and one 1.8 s before stays ahead.
    ami = FakeAmi(entries=[caller(1, 1)])
    behind, *_ = await setup(callback("cb1", place_at=NOW - 1.2), ami=ami)
    await behind.reconcile()
    ahead_ami = FakeAmi(entries=[caller(1, 1)])
    ahead, *_ = await setup(callback("cb2", place_at=NOW - 1.8), ami=ahead_ami)
    await ahead.reconcile()

    assert position_of(ami.originated()[0]) == 2
    assert position_of(ahead_ami.originated()[0]) == 1


async def test_a_higher_priority_caller_stays_ahead_and_a_lower_one_falls_behind() -> None:
    ami = FakeAmi(entries=[caller(1, 10, priority=10), caller(2, 100, priority=0, name="PJSIP/demo-trunk-2")])
    dialer, ami, *_ = await setup(callback(priority=5), ami=ami)

    await dialer.reconcile()

    assert position_of(ami.originated()[0]) == 2


async def test_callbacks_lost_together_go_back_in_their_old_order() -> None:
    dialer, ami, *_ = await setup(callback("cb2", place_at=NOW - 20), callback("cb1", place_at=NOW - 90))

    await dialer.reconcile()

    placed = {o["Exten"]: position_of(o) for o in ami.originated()}
    assert placed == {"cb1": 1, "cb2": 2}


async def test_a_place_not_yet_listed_is_not_made_twice() -> None:
    dialer, ami, *_ = await setup(callback())
    await dialer.reconcile()
    await dialer.reconcile()
    assert len(ami.originated()) == 1


async def test_a_waiting_callback_is_not_placed_before_it_is_due() -> None:
    dialer, ami, *_ = await setup(callback(due_at=NOW + 60))
    await dialer.reconcile()
    assert ami.originated() == []


async def test_an_agent_taking_the_place_makes_it_ringing_with_the_agents_name() -> None:
    ami = FakeAmi(db={"cb1": "1:DIALING:PJSIP/agent1-0000000e"}, channels=["Local/cb1@ivr-callback-hold-1;2"])
    dialer, ami, book, *_ = await setup(callback(), ami=ami)

    await dialer.reconcile()

    stored = await book.get("cb1")
    assert stored is not None and (stored.state, stored.attempts, stored.agent) == (RINGING, 1, "agent1")
    assert "cb1" in ami.db  # the result is still to come
    assert ami.originated() == []


async def test_an_answer_completes_the_callback_and_journals_the_conversation() -> None:
    ami = FakeAmi(db={"cb1": "1:ANSWER"})
    dialer, ami, book, store, _ = await setup(callback(state=RINGING, attempts=1, agent="agent1"), ami=ami)

    await dialer.reconcile()

    stored = await book.get("cb1")
    assert stored is not None and stored.state == COMPLETED
    kinds = [e.type for e in await store.recent("C-1")]
    assert kinds[:3] == ["callback_finished", "callback_connected", "callback_attempted"]
    connected = next(e for e in await store.recent("C-1") if e.type == "callback_connected")
    assert connected.data["waited_s"] == 50 and connected.data["agent"] == "agent1"
    assert ami.db == {}


async def test_a_result_seen_again_after_a_restart_changes_nothing() -> None:
    ami = FakeAmi(db={"cb1": "1:NOANSWER"})
    dialer, ami, book, store, _ = await setup(callback(state=WAITING, attempts=1, due_at=NOW + 60), ami=ami)
    before = len(await store.recent("C-1"))

    await dialer.reconcile()

    assert len(await store.recent("C-1")) == before
    assert ami.db == {} and ami.originated() == []


async def test_an_unanswered_call_is_retried_after_the_spacing() -> None:
    ami = FakeAmi(db={"cb1": "1:NOANSWER"})
    dialer, ami, book, *_ = await setup(callback(state=RINGING, attempts=1), ami=ami)

    await dialer.reconcile()

    stored = await book.get("cb1")
    assert stored is not None and (stored.state, stored.attempts, stored.due_at) == (WAITING, 1, NOW + 60)
    assert ami.originated() == []  # not before the spacing


async def test_the_last_unanswered_attempt_fails_the_callback_and_sends_the_sms() -> None:
    ami = FakeAmi(db={"cb1": "2:BUSY"})
    dialer, ami, book, _store, texts = await setup(callback(state=RINGING, attempts=2), ami=ami)

    await dialer.reconcile()
    await dialer.reconcile()

    stored = await book.get("cb1")
    assert stored is not None and stored.state == FAILED and stored.outcome == "BUSY"
    assert texts.missed_for == ["cb1"] and ami.originated() == []


async def test_a_ringing_callback_whose_call_vanished_counts_as_an_attempt_and_is_placed_again() -> None:
    ami = FakeAmi(db={"cb1": "1:DIALING:PJSIP/agent1-1"})  # Asterisk restarted while it rang
    dialer, ami, book, *_ = await setup(callback(state=RINGING, attempts=1), ami=ami)

    await dialer.reconcile()

    stored = await book.get("cb1")
    assert stored is not None and (stored.state, stored.attempts, stored.outcome) == (WAITING, 1, "LOST")


async def test_a_cancelled_callback_gives_up_its_place() -> None:
    place = caller(1, 30, name="Local/cb1@ivr-callback-hold-00000001;1")
    dialer, ami, *_ = await setup(callback(state=CANCELLED), ami=FakeAmi(entries=[place]))

    await dialer.reconcile()

    assert {"Action": "Hangup", "Channel": "Local/cb1@ivr-callback-hold-00000001;1"} in ami.sent


def test_the_whisper_names_a_known_customer_and_only_the_last_digits_of_a_number() -> None:
    assert whisper_text(callback(name="Maria"), "10:02") == "Callback to Maria, asked at 10:02."
    assert whisper_text(callback(), "10:02") == "Callback to the number ending 1 1 0 2, asked at 10:02."


async def test_customer_first_rings_the_customer_when_the_place_is_at_the_head() -> None:
    ami = FakeAmi(entries=[caller(1, 30, name=PLACE)], channels=[PLACE])
    dialer, ami, book, store, _ = await setup(callback(), ami=ami, policy=CUSTOMER_FIRST)

    await dialer.reconcile()

    [ring] = ami.originated()
    assert (ring["Channel"], ring["Context"], ring["Exten"]) == ("Local/cb1@ivr-callback-ring/n",
                                                                 "ivr-callback-joined", "cb1")
    stored = await book.get("cb1")
    assert stored is not None and (stored.state, stored.attempts) == (RINGING, 1)
    attempted = next(e for e in await store.recent("C-1") if e.type == "callback_attempted")
    assert attempted.data == {"id": "cb1", "attempt": 1, "outcome": "ringing", "agent": "", "first": "customer"}


async def test_customer_first_waits_while_anyone_is_ahead_of_the_place() -> None:
    ami = FakeAmi(entries=[caller(1, 90), caller(2, 30, name=PLACE)])
    dialer, ami, *_ = await setup(callback(), ami=ami, policy=CUSTOMER_FIRST)

    await dialer.reconcile()

    assert ami.originated() == []


async def test_agent_first_never_rings_before_an_agent_takes_the_place() -> None:
    dialer, ami, *_ = await setup(callback(), ami=FakeAmi(entries=[caller(1, 30, name=PLACE)]))

    await dialer.reconcile()

    assert ami.originated() == []


async def test_customer_first_does_not_ring_twice_for_one_turn_at_the_head() -> None:
    ami = FakeAmi(entries=[caller(1, 30, name=PLACE)], channels=[PLACE])
    dialer, ami, book, *_ = await setup(callback(), ami=ami, policy=CUSTOMER_FIRST)
    await dialer.reconcile()
    await book.change("cb1", lambda c: c.but(state=WAITING), "callback_attempted", lambda c: {})

    await dialer.reconcile()

    assert len(ami.originated()) == 1


async def test_customer_first_unanswered_gives_the_place_up_until_the_next_try() -> None:
    ami = FakeAmi(entries=[caller(1, 30, name=PLACE)], db={"cb1": "1:NOANSWER"}, channels=[PLACE])
    dialer, ami, book, *_ = await setup(callback(state=RINGING, attempts=1), ami=ami, policy=CUSTOMER_FIRST)

    await dialer.reconcile()

    stored = await book.get("cb1")
    assert stored is not None and (stored.state, stored.due_at) == (WAITING, NOW + 60)
    assert {"Action": "Hangup", "Channel": PLACE} in ami.sent
    assert ami.originated() == []


async def test_the_place_of_a_customer_who_answered_is_left_for_them_to_take_over() -> None:
    ami = FakeAmi(entries=[caller(1, 30, name=PLACE)], db={"cb1": "1:ANSWER"}, channels=[PLACE])
    dialer, ami, book, *_ = await setup(callback(state=RINGING, attempts=1), ami=ami, policy=CUSTOMER_FIRST)

    await dialer.reconcile()

    stored = await book.get("cb1")
    assert stored is not None and stored.state == COMPLETED
    assert not any(a["Action"] == "Hangup" for a in ami.sent)


async def test_outside_the_queues_callback_hours_no_place_is_made_and_a_held_one_is_given_up() -> None:
    closed = {"is_open": lambda _queue, _now: False}
    fresh, fresh_ami, *_ = await setup(callback(), **closed)
    await fresh.reconcile()
    held, held_ami, *_ = await setup(callback(), ami=FakeAmi(entries=[caller(1, 30, name=PLACE)]), **closed)
    await held.reconcile()

    assert fresh_ami.originated() == []
    assert {"Action": "Hangup", "Channel": PLACE} in held_ami.sent and held_ami.originated() == []


async def test_a_customer_first_ring_that_never_started_counts_as_lost_while_its_place_waits() -> None:
    ami = FakeAmi(entries=[caller(1, 30, name=PLACE)], channels=[PLACE, "Local/cb1@ivr-callback-hold-00000001;2"])
    dialer, ami, book, *_ = await setup(callback(state=RINGING, attempts=1), ami=ami, policy=CUSTOMER_FIRST)

    await dialer.reconcile()

    stored = await book.get("cb1")
    assert stored is not None and (stored.state, stored.outcome) == (WAITING, "LOST")


async def test_a_customer_first_ring_just_originated_is_given_time_to_appear() -> None:
    ami = FakeAmi(entries=[caller(1, 30, name=PLACE)], channels=[PLACE])
    dialer, ami, book, *_ = await setup(callback(), ami=ami, policy=CUSTOMER_FIRST)
    await dialer.reconcile()  # rings: the ring leg is not listed yet

    await dialer.reconcile()

    stored = await book.get("cb1")
    assert stored is not None and stored.state == RINGING


async def run_briefly(dialer: CallbackDialer, lease: Lease) -> None:
    task = asyncio.create_task(dialer.run(interval_s=0.01, lease=lease))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def two_dialers() -> tuple[CallbackDialer, FakeAmi, Lease, CallbackDialer, FakeAmi, Lease]:
    first, first_ami, book, store, _ = await setup(callback())
    second_ami = FakeAmi()
    second = CallbackDialer(second_ami, book, QueueMonitor(second_ami, clock=lambda: NOW), lambda: POLICY,
                            clock=lambda: NOW)
    return first, first_ami, Lease(store, "callback-dialer", "c1"), second, second_ami, Lease(
        store, "callback-dialer", "c2")


async def test_of_two_controllers_only_the_lease_holder_places_callbacks() -> None:
    first, first_ami, first_lease, second, second_ami, second_lease = await two_dialers()

    await run_briefly(first, first_lease)
    await run_briefly(second, second_lease)

    assert (first.active, second.active) == (True, False)
    assert len(first_ami.originated()) == 1 and second_ami.originated() == []


async def test_when_the_holder_gives_the_lease_up_the_other_dials() -> None:
    first, _first_ami, first_lease, second, second_ami, second_lease = await two_dialers()
    await run_briefly(first, first_lease)

    await first_lease.release()
    await run_briefly(second, second_lease)

    assert second.active and len(second_ami.originated()) == 1


async def test_a_controller_that_does_not_dial_still_polls_its_queues_for_its_callers() -> None:
    ami = FakeAmi(entries=[caller(1, 100)])
    monitor = QueueMonitor(ami)
    task = asyncio.create_task(keep_fresh(monitor, interval_s=0.01))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert [e.uniqueid for e in monitor.entries("support")] == ["u1"] and "support" in monitor.snapshot()
