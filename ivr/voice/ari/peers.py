"""Calls left by a controller that died are taken over by a surviving one within seconds.

Each controller runs its own Stasis application (``[ari] apps`` lists them all). A
controller killed with calls in its hands leaves them in its application: the dead-man
timer would send them to the fallback queue after ``[ari] deadman`` seconds, and a
restarted controller at once, but with several controllers neither has to be waited for.

Every controller beats: it writes ``ari_app/<its application>`` into the shared kv table
every ``interval_s``, kept for ``ttl_s``. Every controller also looks at its peers'
applications: a peer whose beat is gone while its application still holds channels on some
Asterisk is dead, and its calls are moved to ``controller-lost@ivr-entry`` (the fallback
queue) by AMI Redirect (:meth:`StasisApp.adopt_orphans_of`). One survivor moves each
channel: the first to write ``ari_orphan/<Asterisk> <channel id>`` (compare-and-set).

A beat's absence counts only once this controller's own beats have been stored for a whole
``ttl_s``: after the store was away (PostgreSQL restarted), a live peer has had the same
chance to beat again, so no live controller's calls are taken from it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence

from ivr.journey.errors import JourneyError, WriteConflict
from ivr.journey.ports import ABSENT, JourneyStore, KvPut
from ivr.voice.ari.app import StasisApp

log = logging.getLogger(__name__)

BEATS = "ari_app"
CLAIMS = "ari_orphan"
INTERVAL_S = 1.0
TTL_S = 4.0  # a controller silent this long is taken as dead (the dead-man timer's 30 s is the backstop)
CLAIM_TTL_S = 3600.0


class OrphanClaims:
    """``on(node)(channel_id)``: True for the one process that may move an orphaned channel.

    Claims are kept by Asterisk (``node``, its ARI URL) and channel: two Asterisks started in
    the same second without a ``systemname`` give their channels the same ids."""

    def __init__(self, store: JourneyStore, app: str) -> None:
        self.store = store
        self.app = app

    def on(self, node: str) -> Callable[[str], Awaitable[bool]]:
        async def claim(channel_id: str) -> bool:
            return await self.claim(node, channel_id)
        return claim

    async def claim(self, node: str, channel_id: str) -> bool:
        key = f"{node} {channel_id}"
        try:
            await self.store.put_and_append([KvPut(CLAIMS, key, {"by": self.app, "at": time.time()},
                                                   CLAIM_TTL_S, expect=ABSENT)], f"orphan:{channel_id}", [])
        except WriteConflict:  # another process claimed it first
            return False
        except JourneyError as exc:
            # Nobody can tell: moving a caller twice costs them a re-join of the fallback
            # queue, leaving them costs the dead-man timer's wait. Peers never get here
            # (they judge nobody while the store is away), so this is a restart's own orphan.
            log.info("orphan %s: claim not stored (%s); moving it anyway", channel_id, exc)
        return True


class PeerWatch:
    """Beats for ``app`` and sends on the calls of peer applications that stopped beating."""

    def __init__(self, app: str, peers: Sequence[str], store: JourneyStore, stasis_apps: Sequence[StasisApp], *,
                 interval_s: float = INTERVAL_S, ttl_s: float = TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.peers = [p for p in peers if p and p != app]
        self.store = store
        self.stasis_apps = stasis_apps
        self.interval_s = interval_s
        self.ttl_s = ttl_s
        self._clock = clock
        self._stored_since: float | None = None  # since when every beat of ours was stored

    async def run(self) -> None:
        while True:
            await self.round()
            await asyncio.sleep(self.interval_s)

    async def round(self) -> None:
        """One beat, then (when the store has been up long enough) one look at the peers."""
        if not await self.beat():
            return
        if self._stored_since is not None and self._clock() - self._stored_since >= self.ttl_s:
            for peer in self.peers:
                await self._look_at(peer)

    async def beat(self) -> bool:
        try:
            await self.store.kv_put(BEATS, self.app, {"pid": os.getpid(), "at": time.time()}, self.ttl_s)
        except JourneyError as exc:
            if self._stored_since is not None:
                log.warning("ARI peer watch: cannot beat (%s); not judging peers until the store is back", exc)
            self._stored_since = None
            return False
        if self._stored_since is None:
            self._stored_since = self._clock()
        return True

    async def _look_at(self, peer: str) -> None:
        try:
            alive = await self.store.kv_get(BEATS, peer) is not None
        except JourneyError:
            return
        if alive:
            return
        for stasis in self.stasis_apps:
            moved = await stasis.adopt_orphans_of(peer)
            if moved:
                log.warning("controller of %r stopped beating: %d of its calls sent to the fallback queue",
                            peer, moved)

    async def stop(self) -> None:
        """A clean stop: the beat goes at once, so the calls still here after the drain are taken over."""
        try:
            await self.store.kv_delete(BEATS, self.app)
        except JourneyError:
            pass
