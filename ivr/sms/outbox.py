"""Outbound SMS while smsbox is away: queued, retried with backoff, never sent twice.

smsbox restarts (an upgrade, a crash) and a notification asked for meanwhile (a callback's
confirmation, ``ivr notify``) must not be lost or sent twice. :class:`SmsOutbox` wraps the
sender: a message smsbox provably never received (the connection was refused or could not
be made, :class:`~ivr.sms.errors.SmsboxUnreachable`) is kept in a bounded in-process queue
and the caller is told it is queued; a background task sends the queue in order, retrying
with backoff until smsbox answers. Any other failure (smsbox answered with an error, or the
connection broke after the request went out, so it may have been taken) is raised as before
and never retried: a retry there could send the text twice.

Once bearerbox is down but smsbox is up, smsbox queues by itself ("3: Queued for later
delivery"); this covers smsbox itself being away. The queue is in memory: a controller
killed during an outage loses what waits (logged at shutdown, counted in /metrics).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

from ivr.backoff import Backoff
from ivr.sms.errors import SendFailed, SmsboxUnreachable
from ivr.sms.sendsms import OutboundSms, SendReceipt, SmsSender

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 10_000  # messages
MAX_AGE_S = 6 * 3600.0  # a notification older than this is news no more: dropped, counted
QUEUED = 0  # SendReceipt.status of a message waiting in the outbox


@dataclass
class OutboxStats:
    waiting: int = 0
    queued: int = 0  # messages that ever waited in the outbox
    sent: int = 0  # of those, taken by smsbox later
    dropped: int = 0  # full, too old, or refused by smsbox once it answered


class SmsOutbox:
    """An :class:`SmsSender` that queues what smsbox could not receive and sends it when it can."""

    def __init__(self, inner: SmsSender, *, limit: int = DEFAULT_LIMIT, max_age_s: float = MAX_AGE_S,
                 backoff: Backoff | None = None) -> None:
        self.inner = inner
        self.limit = limit
        self.max_age_s = max_age_s
        self.stats = OutboxStats()
        self._queue: deque[tuple[float, OutboundSms]] = deque()
        self._backoff = backoff or Backoff(initial_s=1.0, maximum_s=60.0)
        self._sender: asyncio.Task[None] | None = None

    async def send(self, sms: OutboundSms) -> SendReceipt:
        if not self._queue:
            try:
                return await self.inner.send(sms)
            except SmsboxUnreachable as exc:
                log.warning("smsbox unreachable (%s): queueing outbound SMS until it answers", exc)
        return self._enqueue(sms)

    def _enqueue(self, sms: OutboundSms) -> SendReceipt:
        if len(self._queue) >= self.limit:
            self.stats.dropped += 1
            log.error("SMS outbox full (%d waiting): the text to %s (%s) is DROPPED", len(self._queue), sms.to,
                      sms.interaction)
            raise SendFailed(f"smsbox is unreachable and {len(self._queue)} texts already wait for it",
                             hint="start Kannel (`ivr kannel status`); the outbox sends them when it answers")
        self._queue.append((time.monotonic(), sms))
        self.stats.waiting = len(self._queue)
        self.stats.queued += 1
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._drain(), name="sms-outbox")
        return SendReceipt(QUEUED, f"queued: smsbox unreachable, {len(self._queue)} waiting; sent when it answers")

    async def _drain(self) -> None:
        self._backoff.reset()
        while self._queue:
            queued_at, sms = self._queue[0]
            if time.monotonic() - queued_at > self.max_age_s:
                self.stats.dropped += 1
                log.error("SMS outbox: the text to %s (%s) waited %.0f s and is DROPPED", sms.to, sms.interaction,
                          time.monotonic() - queued_at)
            else:
                try:
                    await self.inner.send(sms)
                except SmsboxUnreachable:
                    await asyncio.sleep(self._backoff.next_delay())
                    continue
                except SendFailed as exc:  # smsbox answered, and said no: retrying would not change that
                    self.stats.dropped += 1
                    log.error("SMS outbox: smsbox refused the text to %s (%s): %s", sms.to, sms.interaction, exc)
                else:
                    self.stats.sent += 1
            self._queue.popleft()
            self.stats.waiting = len(self._queue)
        log.warning("SMS outbox empty again: smsbox answers (%d sent after waiting so far)", self.stats.sent)

    async def drained(self) -> None:
        """Return once the outbox is empty (tests, and a clean shutdown)."""
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)

    async def close(self) -> None:
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
            log.error("SMS outbox: %d texts still waiting at shutdown are lost", len(self._queue))
        close = getattr(self.inner, "close", None)
        if close is not None:
            await close()
