"""A surviving controller takes over the calls of a peer that stopped beating (ivr/voice/ari/peers.py)."""

from __future__ import annotations

from ivr.journey.errors import StoreUnavailable
from ivr.journey.memory import MemoryJourney
from ivr.voice.ari.app import PEER_LOST_REASON, StasisApp
from ivr.voice.ari.peers import BEATS, OrphanClaims, PeerWatch
from tests.clock import FakeClock
from tests.unit.voice.test_ari_driver import FakeAri, Redirects, never

CHANNEL = "1700000000.9"
TTL = 4.0


def survivor(store: MemoryJourney, clock: FakeClock, *, app: str = "ivr-2", channels: list[str] | None = None,
             redirects: Redirects | None = None) -> tuple[PeerWatch, Redirects, FakeAri]:
    """Controller ``app`` with one Asterisk whose application ``ivr-1`` holds ``channels``."""
    ari = FakeAri(app_channels=[CHANNEL] if channels is None else channels, names={CHANNEL: "PJSIP/t-9"})
    redirects = redirects or Redirects()
    stasis = StasisApp(ari, app, {"call": never}, store, redirect=redirects, claim=OrphanClaims(store, app).on("http://a1"))
    return PeerWatch(app, ["ivr-1", "ivr-2", "ivr-3"], store, [stasis], ttl_s=TTL, clock=clock), redirects, ari


async def settled(watch: PeerWatch, clock: FakeClock) -> None:
    """Two rounds a whole TTL apart: this controller's beats have been stored long enough."""
    await watch.round()
    clock.advance(TTL)
    await watch.round()


async def test_the_calls_of_a_peer_that_stopped_beating_go_to_the_fallback_queue_as_controller_lost():
    store, clock = MemoryJourney(), FakeClock()
    watch, redirects, _ari = survivor(store, clock)

    await settled(watch, clock)

    assert redirects.moves == [("PJSIP/t-9", "ivr-entry", PEER_LOST_REASON, "1")]
    events = await store.recent(f"call:{CHANNEL}")
    assert [(e.type, e.data["reason"], e.data["via"]) for e in events] == [
        ("call_readopted", "controller-lost", "redirect")]


async def test_a_peer_that_beats_keeps_its_calls():
    store, clock = MemoryJourney(), FakeClock()
    watch, redirects, _ari = survivor(store, clock)
    await store.kv_put(BEATS, "ivr-1", {"at": 0}, 60)
    await store.kv_put(BEATS, "ivr-3", {"at": 0}, 60)

    await settled(watch, clock)

    assert redirects.moves == []


async def test_no_peer_is_judged_before_this_controllers_own_beats_were_stored_for_a_whole_ttl():
    store, clock = MemoryJourney(), FakeClock()
    watch, redirects, ari = survivor(store, clock)

    await watch.round()
    clock.advance(TTL - 0.5)
    await watch.round()

    assert redirects.moves == [] and ari.requests == []


class Flaky(MemoryJourney):
    """A store that is away while ``down`` is set."""

    down = False

    async def kv_put(self, namespace: str, key: str, value: dict, ttl_s: float) -> None:
        if self.down:
            raise StoreUnavailable("test", "write", ConnectionError("down"))
        await super().kv_put(namespace, key, value, ttl_s)


async def test_after_the_store_was_away_a_live_peer_whose_beat_lapsed_meanwhile_keeps_its_calls():
    clock = FakeClock()
    store = Flaky(clock=clock)
    watch, redirects, _ari = survivor(store, clock)
    await store.kv_put(BEATS, "ivr-3", {"at": 0}, 1000)
    await store.kv_put(BEATS, "ivr-1", {"at": 0}, TTL)
    await watch.round()
    clock.advance(1)
    store.down = True  # the peer cannot beat either: its beat lapses meanwhile
    await watch.round()
    clock.advance(TTL)
    store.down = False

    await watch.round()  # the store is back; the peer has not beaten yet
    clock.advance(0.5)
    await store.kv_put(BEATS, "ivr-1", {"at": 0}, TTL)  # ... and now it has
    clock.advance(TTL - 0.5)  # peers are judged again; the peer's beat is still fresh
    await watch.round()

    assert redirects.moves == []


async def test_two_survivors_move_each_orphan_once():
    store, clock = MemoryJourney(), FakeClock()
    first, first_moves, _ = survivor(store, clock, app="ivr-2")
    second, second_moves, _ = survivor(store, clock, app="ivr-3")
    await store.kv_put(BEATS, "ivr-2", {"at": 0}, 60)
    await store.kv_put(BEATS, "ivr-3", {"at": 0}, 60)

    await first.round()
    await second.round()
    clock.advance(TTL)
    await first.round()
    await second.round()

    assert len(first_moves.moves) + len(second_moves.moves) == 1


async def test_a_dead_peers_snoop_channel_is_hung_up_not_sent_to_a_queue():
    store, clock = MemoryJourney(), FakeClock()
    watch, redirects, ari = survivor(store, clock, channels=["ivr-aux-1700000000.9-snoop"])

    await settled(watch, clock)

    assert redirects.moves == []
    assert ari.paths("DELETE") == ["channels/ivr-aux-1700000000.9-snoop"]


async def test_a_clean_stop_takes_the_beat_away_at_once():
    store, clock = MemoryJourney(), FakeClock()
    watch, _redirects, _ari = survivor(store, clock)
    await watch.beat()

    await watch.stop()

    assert await store.kv_get(BEATS, "ivr-2") is None


async def test_a_restarted_controller_does_not_move_an_orphan_a_peer_already_moved():
    store = MemoryJourney()
    assert await OrphanClaims(store, "ivr-2").claim("http://a1", CHANNEL)
    ari, redirects = FakeAri(app_channels=[CHANNEL], names={CHANNEL: "PJSIP/t-9"}), Redirects()
    restarted = StasisApp(ari, "ivr-1", {"call": never}, store, redirect=redirects,
                          claim=OrphanClaims(store, "ivr-1").on("http://a1"))

    await restarted._readopt()

    assert redirects.moves == []


async def test_the_same_channel_id_on_two_asterisks_is_two_claims():
    claims = OrphanClaims(MemoryJourney(), "ivr-2")

    assert [await claims.claim("http://a1", CHANNEL), await claims.claim("http://a2", CHANNEL),
            await claims.claim("http://a1", CHANNEL)] == [True, True, False]
