"""The scale-out topology on the real engines: Kamailio in front of two Asterisks, two
controllers, one PostgreSQL (``ivr cluster up``). Calls are real SIPp calls sent to
Kamailio; what happened is read from both Asterisks' AMI events."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from ivr.callbacks.book import CallbackBook
from ivr.callbacks.record import CANCELLED, Callback, new_id
from ivr.errors import IvrError
from ivr.harness.calls import CallRequest, place_call
from ivr.harness.record import CallRecord
from ivr.journey.pg_store import PgJourneyStore
from ivr.runtime.cluster import Cluster
from ivr.settings import Settings
from ivr.voice.ami import AmiClient

pytestmark = pytest.mark.asterisk

MENU = "100"  # the demo menu over FastAGI; 0 asks for an operator: the support queue
ARI_MENU = "101"  # the same menu over ARI


@pytest.fixture(scope="module")
def cluster(asterisk: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("cluster")
    settings = dataclasses.replace(asterisk, cluster=dataclasses.replace(asterisk.cluster, state_dir=str(state)))
    cluster = Cluster(settings)
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()


def call(cluster: Cluster, **request: object) -> CallRecord:
    return calls(cluster, 1, **request)[0]


def calls(cluster: Cluster, count: int, *, watch: tuple[int, ...] = (1, 2), **request: object) -> list[CallRecord]:
    """``count`` calls at once, each from its own number, followed on the Asterisks in ``watch``."""
    async def all_of() -> list[CallRecord]:
        return list(await asyncio.gather(*(place(cluster, CallRequest(caller=f"7999200{i:04d}", **request), watch)
                                           for i in range(count))))  # type: ignore[arg-type]
    return asyncio.run(all_of())


async def place(cluster: Cluster, request: CallRequest, watch: tuple[int, ...] = (1, 2)) -> CallRecord:
    s = cluster.settings
    return await place_call(s, request, via=f"{s.sip.bind}:{s.cluster.sip_port}",
                            asterisks=[cluster.asterisk_settings(n) for n in watch])


def ami_of(cluster: Cluster, n: int) -> str:
    node = cluster.asterisk_settings(n)
    return f"{node.ami.local_host}:{node.ami.port}"


def controller_url(cluster: Cluster, m: int) -> str:
    return f"agi://{cluster.controller_addresses()[m - 1]}"


def test_calls_sent_to_kamailio_land_on_both_asterisks_and_reach_both_controllers(cluster):
    """Six FastAGI and four ARI calls at once (the same demo menu on 100 and 101)."""
    async def both_drivers() -> list[CallRecord]:
        return list(await asyncio.gather(*(
            place(cluster, CallRequest(caller=f"7999300{i:04d}", dnis=MENU if i < 6 else ARI_MENU, keys="0",
                                       delay_s=3, hold_s=6)) for i in range(10))))

    records = asyncio.run(both_drivers())
    agi, ari = records[:6], records[6:]

    assert [r.errors for r in records] == [[]] * 10
    assert {r.asterisk for r in records} == {ami_of(cluster, 1), ami_of(cluster, 2)}
    assert {r.variables["IVR_AGI_PEER"] for r in agi} <= {controller_url(cluster, 1), controller_url(cluster, 2)}
    assert {r.variables["IVR_ARI_APP"] for r in ari} <= {"ivr-1", "ivr-2"}
    assert [r.variables["IVR_DRIVER"] for r in records] == ["agi"] * 6 + ["ari"] * 4
    assert all(r.queue is not None and r.queue.name == "support" for r in records)
    assert all(not r.variables.get("IVR_FALLBACK") for r in records)


def test_every_controller_polls_the_queues_of_both_asterisks_by_their_system_names(cluster):
    """A call hears the place and wait of the queues of the Asterisk it is on (its uniqueid
    starts with that Asterisk's system name), so each controller polls every Asterisk's."""
    until(lambda: all(health(cluster, m).get("queues_of") == ["asterisk1", "asterisk2"] for m in (1, 2)),
          "a controller does not know both Asterisks' queues", timeout=10)


def test_a_controller_killed_under_load_loses_no_call_and_the_other_takes_every_new_one(cluster):
    """Sixteen calls, one every half second; controller 1 is killed with SIGKILL after the
    eighth. A call in its hands then goes to the fallback queue; every call placed after the
    kill is served by controller 2 (Asterisk skips the refused connection) and reaches the
    queue its caller chose."""
    dead = controller_url(cluster, 1)

    async def scenario() -> tuple[list[CallRecord], list[bool]]:
        placed, after_kill = [], []
        for i in range(16):
            if i == 8:
                for pid in cluster.controller_pids(1):
                    os.kill(pid, signal.SIGKILL)
                while cluster.controller_pids(1):  # gone (a zombie holds no socket)
                    await asyncio.sleep(0.01)
            after_kill.append(i >= 8)
            placed.append(asyncio.create_task(place(cluster, CallRequest(
                caller=f"7999100{i:04d}", dnis=MENU, keys="0", delay_s=3, hold_s=6))))
            await asyncio.sleep(0.5)
        return list(await asyncio.gather(*placed)), after_kill

    try:
        records, after_kill = asyncio.run(scenario())
    finally:
        cluster.start_controller(1)

    fell_back = [r for r in records if r.variables.get("IVR_FALLBACK")]
    print(f"\n{len(fell_back)} of 16 calls were in the killed controller's hands and went to the fallback queue")
    assert [r.errors for r in records] == [[]] * 16
    assert all(r.queue is not None and r.queue.name == "support" for r in records)  # nobody dropped
    assert all(r.variables["IVR_AGI_PEER"] == dead and r.variables["IVR_FALLBACK"] == "controller-no-decision"
               for r in fell_back)
    late = [r for r, late in zip(records, after_kill, strict=True) if late]
    assert all(not r.variables.get("IVR_FALLBACK") for r in late)
    assert {r.variables["IVR_AGI_PEER"] for r in late} == {controller_url(cluster, 2)}


def test_with_one_controller_stopped_every_ari_call_is_taken_by_the_others_application(cluster):
    cluster.stop_controller(1)
    try:
        records = calls(cluster, 4, dnis=ARI_MENU, keys="0", delay_s=3, hold_s=6)
    finally:
        cluster.start_controller(1)

    assert [r.errors for r in records] == [[]] * 4
    assert {r.asterisk for r in records} == {ami_of(cluster, 1), ami_of(cluster, 2)}
    assert {r.variables["IVR_ARI_APP"] for r in records} == {"ivr-2"}  # ivr-1 has no client: skipped
    assert all(r.queue is not None and r.queue.name == "support" for r in records)
    assert all(not r.variables.get("IVR_FALLBACK") for r in records)


def test_the_ari_calls_of_a_killed_controller_are_taken_over_by_the_other_before_the_dead_man_timer(cluster):
    """Four ARI calls in controller 1's application (controller 2 is stopped while they
    arrive, then started again); controller 1 is killed with SIGKILL. Controller 2 sees its
    beat lapse and moves the four callers to the fallback queue with AMI Redirect: each call
    is journaled as taken over ("controller-lost", via redirect), which the dead-man timer
    (30 s, no journal entry) would not do."""
    async def scenario() -> list[CallRecord]:
        cluster.stop_controller(2)
        placed = [asyncio.create_task(place(cluster, CallRequest(caller=f"7999400{i:04d}", dnis=ARI_MENU, keys="0",
                                                                  delay_s=10, hold_s=8))) for i in range(4)]
        await asyncio.sleep(2.0)
        await asyncio.to_thread(cluster.start_controller, 2)
        for pid in cluster.controller_pids(1):
            os.kill(pid, signal.SIGKILL)
        return list(await asyncio.gather(*placed))

    try:
        records = asyncio.run(scenario())
    finally:
        cluster.start_controller(1)
        cluster.start_controller(2)

    assert [r.errors for r in records] == [[]] * 4
    assert {r.variables["IVR_ARI_APP"] for r in records} == {"ivr-1"}
    assert all(r.queue is not None for r in records)  # nobody dropped
    assert {r.variables.get("IVR_FALLBACK") for r in records} == {"controller-lost"}
    for r in records:
        taken = [e.data for e in asyncio.run(interaction_events(cluster, r.uniqueid)) if e.type == "call_readopted"]
        assert taken == [{"outcome": "fallback", "reason": "controller-lost", "via": "redirect"}], r.uniqueid


def test_when_the_callback_dialer_is_killed_the_other_controller_takes_the_lease_and_keeps_places_on_asterisk_1(
        cluster):
    """Both controllers may dial callbacks; the lease holder does. Killed with SIGKILL, its
    lease expires and the other controller becomes the dialer: a callback booked then gets
    its place in Asterisk 1's support queue (where every place of the cluster is kept), and
    gives it up when cancelled."""
    active = [m for m in (1, 2) if health(cluster, m).get("callback_dialer") == "active"]
    assert len(active) == 1 and {health(cluster, m).get("callback_dialer") for m in (1, 2)} == {"active", "standby"}
    holder, other = active[0], 3 - active[0]
    cb_id = new_id(time.time())
    for pid in cluster.controller_pids(holder):
        os.kill(pid, signal.SIGKILL)
    try:
        until(lambda: health(cluster, other).get("callback_dialer") == "active",
              f"controller {other} never took the dialer lease", timeout=30)
        asyncio.run(book(cluster, cb_id))
        until(lambda: cb_id in asyncio.run(places_on_asterisk_1(cluster)),
              "the callback got no place in Asterisk 1's queue", timeout=15)
    finally:
        asyncio.run(book(cluster, cb_id, cancel=True))
        cluster.start_controller(holder)
    until(lambda: cb_id not in asyncio.run(places_on_asterisk_1(cluster)),
          "the cancelled callback kept its place", timeout=15)


def health(cluster: Cluster, m: int) -> dict:
    try:
        with urllib.request.urlopen(cluster.controller(m).health_url, timeout=2) as resp:
            return json.loads(resp.read())
    except OSError:
        return {}


async def book(cluster: Cluster, cb_id: str, *, cancel: bool = False) -> None:
    """A callback for a stranger in ``support``, straight into the shared book (or cancelled there)."""
    store = await PgJourneyStore.open(cluster.postgres("url"))
    try:
        callbacks = CallbackBook(store)
        if cancel:
            await callbacks.change(cb_id, lambda c: c.but(state=CANCELLED, outcome="cancelled by test") if c.open
                                   else None, "callback_finished",
                                   lambda c: {"outcome": CANCELLED, "attempts": c.attempts, "by": "test"})
            return
        now = time.time()
        await callbacks.add(Callback(id=cb_id, key="+79995550101", number="+79995550101", queue="support",
                                     priority=0, reason="test", channel="voice", interaction=f"test-{cb_id}",
                                     requested_at=now, place_at=now, due_at=now), "callback_requested",
                            {"id": cb_id, "queue": "support", "reason": "test"})
    finally:
        await store.close()


async def places_on_asterisk_1(cluster: Cluster) -> set[str]:
    node = cluster.asterisk_settings(1)
    ami = AmiClient(node.ami.local_host, node.ami.port, node.ami.user, node.ami.secret)
    await ami.connect()
    try:
        entries = await ami.queue_status()
    finally:
        ami.close()
    return {e.get("Channel", "").partition("@")[0].removeprefix("Local/") for e in entries
            if e.get("Event") == "QueueEntry"}


def test_a_stopped_asterisk_gets_no_new_call_once_its_probe_fails(cluster):
    kamailio = cluster.kamailio()
    second = cluster.asterisks()[1]
    second_uri = sip_uri(cluster, 2)
    second.down()
    stopped = time.monotonic()
    try:
        until(lambda: {d.uri: d.active for d in kamailio.destinations()}[second_uri] is False,
              "Kamailio kept sending calls to the stopped Asterisk", timeout=cluster.config.probe_interval * 3 + 5)
        print(f"\nKamailio marked the stopped Asterisk down after {time.monotonic() - stopped:.1f} s "
              f"(probe interval {cluster.config.probe_interval} s, probe timeout 2 s)")
        records = calls(cluster, 4, watch=(1,), dnis=MENU, keys="0", delay_s=3, hold_s=6)
    finally:
        back_up(cluster, 2)

    assert [r.errors for r in records] == [[]] * 4
    assert {r.asterisk for r in records} == {ami_of(cluster, 1)}
    assert all(r.queue is not None and r.queue.name == "support" for r in records)


def test_a_call_sent_to_an_asterisk_that_just_stopped_is_moved_to_the_other(cluster):
    """Before any probe notices: the INVITE goes unanswered, Kamailio's failure route sends
    it to the next Asterisk (and marks the silent one down at once)."""
    cluster.asterisks()[1].down()
    try:
        records = calls(cluster, 2, watch=(1,), dnis=MENU, keys="0", delay_s=3, hold_s=6)  # round robin: one each
    finally:
        back_up(cluster, 2)

    assert [r.errors for r in records] == [[]] * 2
    assert {r.asterisk for r in records} == {ami_of(cluster, 1)}
    assert all(r.queue is not None and r.queue.name == "support" for r in records)


def back_up(cluster: Cluster, n: int) -> None:
    """Start Asterisk ``n`` again and wait until Kamailio sends calls there."""
    cluster.asterisks()[n - 1].up()
    until(lambda: {d.uri: d.active for d in cluster.kamailio().destinations()}[sip_uri(cluster, n)],
          "the Asterisk never came back", timeout=cluster.config.probe_interval * 3 + 5)


def sip_uri(cluster: Cluster, n: int) -> str:
    node = cluster.asterisk_settings(n)
    return f"sip:{node.sip.bind}:{node.sip.port}"


def test_a_ussd_session_whose_requests_alternate_between_the_controllers_loses_no_step(cluster):
    session = f"ATUid_cluster_{time.time_ns()}"
    replies = []
    for step, text in enumerate(["", "2", "2*1"]):
        port = cluster.controller(1 + step % 2).http_port
        replies.append(ussd(port, session, ANNA, "*111#", text))

    assert replies[0].startswith("CON ")
    assert replies[1].startswith("CON Tariffs\n")
    assert replies[2].startswith("CON Your tariff is Max.")
    events = asyncio.run(interaction_events(cluster, session))
    assert [e.data["key"] for e in events if e.type == "key_pressed"] == ["2", "1"]  # each step once, in order
    assert [e.data["node"] for e in events if e.type == "ussd_screen"] == ["main", "tariffs", "tariffs"]


def test_the_ussd_rate_limit_is_one_bucket_for_both_gateway_processes(cluster):
    """config/ussd.yaml: a burst of 10 per number. Eleven requests alternating between the
    two processes: the eleventh is refused, though each process saw only five or six."""
    replies = [ussd(cluster.controller(1 + i % 2).http_port, f"ATUid_burst_{time.time_ns()}_{i}", IVAN, "*111#", "")
               for i in range(11)]

    assert all(r.startswith("CON ") for r in replies[:10])
    assert replies[10].startswith("END Too many requests")


def test_the_sms_rate_limit_is_one_window_for_both_controllers(cluster):
    """config/sms.yaml: 5 texts per number a minute. Six alternating between the two controllers
    (as Kannel behind a load balancer would post them): the sixth is refused, though each
    controller saw only three."""
    number = f"+7999300{time.time_ns() % 10_000:04d}"  # its own number: a window outlives the test
    refusals = [sms(cluster.controller(1 + i % 2).http_port, number, "HELP", f"cl{time.time_ns()}{i}")
                for i in range(6)]

    assert refusals == [""] * 5 + ["rate-limited"]


def sms(port: int, sender: str, text: str, message_id: str) -> str:
    """One text posted as smsbox posts it; the refusal header of the answer ("" for a reply)."""
    query = urllib.parse.urlencode({"from": sender, "to": "1000", "text": text, "id": message_id,
                                    "charset": "utf-8", "coding": "0"})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/sms/kannel?{query}", timeout=10) as resp:
        return resp.headers.get("X-IVR-Refused", "")


ANNA = "+79991234567"  # the demo VIP, English
IVAN = "+79992088812"  # the demo debtor


def ussd(port: int, session: str, number: str, code: str, text: str) -> str:
    form = urllib.parse.urlencode({"sessionId": session, "serviceCode": code, "phoneNumber": number,
                                   "networkCode": "25001", "text": text}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/ussd", data=form, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


async def interaction_events(cluster: Cluster, interaction: str) -> list:
    store = await PgJourneyStore.open(cluster.postgres("url"))
    try:
        return await store.interaction_events(interaction)
    finally:
        await store.close()


def until(check, message: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except IvrError:
            pass
        time.sleep(0.2)
    pytest.fail(message)


def test_postgresql_down_during_a_call_the_call_goes_on_and_its_journey_catches_up(cluster):
    cluster.postgres("pause")
    try:
        record = call(cluster, dnis=MENU, keys="0", delay_s=3, hold_s=6)
    finally:
        cluster.postgres("start")

    assert record.errors == []
    assert record.queue is not None and record.queue.name == "support"
    assert not record.variables.get("IVR_FALLBACK")
    stored: list = []

    def caught_up() -> bool:
        stored[:] = asyncio.run(interaction_events(cluster, record.uniqueid))
        return any(e.type == "route_decided" for e in stored)

    until(caught_up, "the call's journey never reached PostgreSQL", timeout=30)
    kinds = [e.type for e in stored]
    assert kinds[0] == "call_started" and "key_pressed" in kinds
