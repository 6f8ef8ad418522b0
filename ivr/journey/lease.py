"""One holder at a time for a job several controllers could do: a lease in the shared kv table.

Some work must be done by exactly one process of a cluster: the callback dialer keeps each
waiting caller's place in a queue, and two dialers would make two places and ring the
customer twice. Every controller may do it; the one that holds the lease does. The lease
is one kv entry (holder, when) written by compare-and-set (:func:`ivr.journey.cas.change_kv`)
and kept for ``ttl_s``: the holder renews it every round, and when the holder dies its entry
expires and the next controller to ask takes it.

A holder that cannot renew (the store is away, another process holds it) stops holding at
once, while its entry still stands for others: the two never act at the same time, as long
as one round of the job is shorter than ``ttl_s``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ivr.journey.cas import change_kv
from ivr.journey.errors import JourneyError
from ivr.journey.ports import JourneyStore

log = logging.getLogger(__name__)

NAMESPACE = "lease"
DEFAULT_TTL_S = 10.0


class Lease:
    """``await hold()``: True while this process holds the lease ``name``."""

    def __init__(self, store: JourneyStore, name: str, holder: str, *, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl_s = ttl_s
        self.held = False
        self.other = ""  # who holds it when we do not (for the log)
        self._told = False  # the first answer is logged either way

    async def hold(self) -> bool:
        """Take the lease if it is free, renew it if it is ours; False otherwise (and on any store error)."""
        try:
            done, taken = await change_kv(self.store, NAMESPACE, self.name, self._take, self.ttl_s)
        except JourneyError as exc:
            if self.held:
                log.warning("lease %r: cannot renew (%s); stepping down", self.name, exc)
            self.held = False
            return False
        now_held = bool(done and taken)
        if now_held != self.held or not self._told:
            self._told = True
            log.info("lease %r %s", self.name, "taken by this process" if now_held else f"held by {self.other}")
        self.held = now_held
        return now_held

    def _take(self, stored: dict[str, Any] | None) -> tuple[bool, dict[str, Any] | None]:
        holder = str((stored or {}).get("holder", ""))
        if stored is not None and holder != self.holder:
            self.other = holder or "another process"
            return False, None
        self.other = ""
        return True, {"holder": self.holder, "at": time.time()}

    async def release(self) -> None:
        """Give the lease up now (a clean stop), so the next holder need not wait for it to expire."""
        if not self.held:
            return
        self.held = False
        try:
            stored = await self.store.kv_get(NAMESPACE, self.name)
            if stored is not None and stored.get("holder") == self.holder:
                await self.store.kv_delete(NAMESPACE, self.name)
        except JourneyError as exc:
            log.info("lease %r: not released (%s); it expires in %.0f s", self.name, exc, self.ttl_s)
