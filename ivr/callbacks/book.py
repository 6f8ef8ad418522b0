"""The durable list of callbacks, in the journey store: each change written with its journey event.

Every change is a compare-and-set of the record together with the journey event that
says what happened (:meth:`JourneyStore.put_and_append`): the record and the journey
never disagree, a controller killed between the two cannot exist, and two processes
that race on one callback cannot both dial it (the second write fails and re-reads).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from ivr.callbacks.record import NAMESPACE, Callback, order
from ivr.journey.codec import kv_text
from ivr.journey.errors import WriteConflict
from ivr.journey.ports import ABSENT, JourneyStore, KvPut, StampedEvent

#: A finished callback stays listable this long (``ivr callbacks list --all``); an open one
#: lives until its queue's keep_days end it.
FINISHED_TTL_S = 7 * 86400
OPEN_TTL_S = 31 * 86400


class CallbackBook:
    def __init__(self, store: JourneyStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def add(self, callback: Callback, kind: str, data: dict[str, Any]) -> None:
        """Store a new callback and its request event; WriteConflict if the id exists."""
        text = kv_text(callback.to_json())
        put = KvPut(NAMESPACE, callback.id, callback.to_json(), OPEN_TTL_S, text=text, expect=ABSENT)
        await self.store.put_and_append([put], callback.key, [self._event(callback, kind, data)])

    async def get(self, callback_id: str) -> Callback | None:
        data = await self.store.kv_get(NAMESPACE, callback_id)
        return None if data is None else Callback.from_json(data)

    async def change(self, callback_id: str, update: Callable[[Callback], Callback | None],
                     kind: str, data: Callable[[Callback], dict[str, Any]], *, attempts: int = 5,
                     more: Callable[[Callback], list[tuple[str, dict[str, Any]]]] | None = None) -> Callback | None:
        """Apply ``update`` to the stored record and journal ``kind`` (and ``more`` events); None
        when ``update`` declines (returns None) or the callback is gone. A concurrent change is
        re-read and re-applied."""
        for _ in range(attempts):
            text = await self.store.kv_get_text(NAMESPACE, callback_id)
            if text is None:
                return None
            current = Callback.from_json(json.loads(text))
            new = update(current)
            if new is None:
                return None
            ttl = OPEN_TTL_S if new.open else FINISHED_TTL_S
            put = KvPut(NAMESPACE, new.id, new.to_json(), ttl, expect=text)
            events = [self._event(new, kind, data(new))]
            events += [self._event(new, k, d) for k, d in (more(new) if more is not None else [])]
            try:
                await self.store.put_and_append([put], new.key, events)
            except WriteConflict:
                continue
            return new
        raise WriteConflict("callbacks", NAMESPACE, callback_id)

    async def all(self) -> list[Callback]:
        """Every stored callback, open ones first in queue order, then the finished, newest first."""
        found = [Callback.from_json(v) for _, v in await self.store.kv_scan(NAMESPACE)]
        open_ = sorted((c for c in found if c.open), key=order)
        done = sorted((c for c in found if not c.open), key=lambda c: -c.requested_at)
        return open_ + done

    async def open(self) -> list[Callback]:
        return [c for c in await self.all() if c.open]

    def _event(self, callback: Callback, kind: str, data: dict[str, Any]) -> StampedEvent:
        # Under the interaction that asked for it: the whole callback reads as one contact,
        # and the KPIs do not count each attempt as another interaction.
        return StampedEvent(self.clock(), callback.channel, callback.interaction, kind, {"id": callback.id, **data})
