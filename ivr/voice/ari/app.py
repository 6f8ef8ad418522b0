"""The Stasis application: one events WebSocket, one task per call, reconnect and re-adopt.

Asterisk keeps no events for an application with no client ("Inactive Stasis app ...
missed message"), so the link is ours to keep: on a drop or an Asterisk restart the
application reconnects with backoff and asks ``GET /applications/{app}`` which channels are
still in it. A call this process still runs is resumed (a playback that finished while the
link was down is counted as finished; a key pressed then is lost, and the menu's no-input
handling asks again); a call that left meanwhile ends its session; a channel nobody here
runs (this controller restarted) is sent on to the fallback queue. Each of these is logged
and journaled.

Sending such a channel on is done with AMI ``Redirect`` when the controller has AMI: ARI
queues its commands on a channel behind the one it is running, so a ``continue`` (or even a
variable set) waits for the end of a prompt the dead controller started, and the caller
would hear it out before reaching a person. ``Redirect`` cuts it at once.

A dead controller cannot route anyone, so every call carries a dead-man timer: the
application keeps the channel's ``TIMEOUT(absolute)`` pushed ahead while it runs the
call; if the controller dies and never comes back, Asterisk ends the Stasis part and
the dialplan's ``T`` extension sends the caller to the fallback queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ivr.backoff import Backoff
from ivr.errors import IvrError
from ivr.journey.events import CALL_READOPTED, VOICE
from ivr.journey.ports import JourneySink, StampedEvent
from ivr.voice.ari.audio import AriAudio, aux_owner
from ivr.voice.ari.call import END, AriCall
from ivr.voice.ari.client import CONNECTED, AriDisconnected, AriError, AriLink
from ivr.voice.ports import ChannelFailed, VoiceChannel

log = logging.getLogger(__name__)

Handler = Callable[[VoiceChannel], Awaitable[None]]
#: Move a channel (by name) to (context, extension, priority) at once; raises IvrError if it cannot.
Redirect = Callable[[str, str, str, str], Awaitable[None]]
#: True for exactly one process per orphaned channel id (compare-and-set in the shared store).
Claim = Callable[[str], Awaitable[bool]]
DEADMAN_S = 30  # a call without its controller for this long goes to the fallback queue; renewed every third
ORPHAN_REASON = "controller-restarted"
PEER_LOST_REASON = "controller-lost"  # a peer controller died: its calls, taken over by a survivor
DEFAULT_ROUTE = "call"
ORPHAN_CONTEXT = "ivr-entry"  # dialplan/ivr.conf: the extension named ORPHAN_REASON goes to the fallback queue
AUX_START_TIMEOUT_S = 2.0
_ENDING = ("StasisEnd", "ChannelDestroyed", "ChannelHangupRequest")


class StasisApp:
    def __init__(self, client: AriLink, app: str, handlers: Mapping[str, Handler], journey: JourneySink, *,
                 speech: bool = False, on_connect: Callable[[], Awaitable[None]] | None = None,
                 deadman_s: int = DEADMAN_S, redirect: Redirect | None = None,
                 claim: Claim | None = None) -> None:
        self.client = client
        self.redirect = redirect
        #: Several controllers: True for the one process that may move an orphaned channel
        #: (this one restarted, or a survivor taking a dead peer's calls; ivr/voice/ari/peers.py).
        self.claim = claim
        self.app = app
        self.handlers = handlers  # by route (the Stasis() second argument): "call", "selftest"
        self.on_connect = on_connect
        self.deadman_s = deadman_s
        self.journey = journey
        self.speech = speech
        self.calls: dict[str, AriCall] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._chores: set[asyncio.Task[None]] = set()  # orphans being sent on by ARI
        self.connected = asyncio.Event()
        self._entered: dict[str, asyncio.Event] = {}  # our snoop and media channels' StasisStart
        self.connections = 0

    @property
    def live(self) -> set[asyncio.Task[None]]:
        return self.tasks

    async def run(self) -> None:
        """Follow the application's events for ever, reconnecting with backoff."""
        backoff = Backoff()
        while True:
            try:
                async for event in self.client.events(self.app):
                    if event.get("type") == CONNECTED:  # the application exists again in Asterisk
                        self.connected.set()
                        self.connections += 1
                        backoff.reset()
                        log.info("ARI application %r connected (connection %d)", self.app, self.connections)
                        await self._readopt()
                        if self.on_connect is not None:
                            await self._safely(self.on_connect)
                        _raise_if_cancelling()
                        continue
                    self.dispatch(event)
            except AriDisconnected as exc:
                if self.connected.is_set():
                    log.warning("ARI events lost: %s", exc)
                self.connected.clear()
            except asyncio.CancelledError:
                self.connected.clear()
                raise
            except Exception:  # noqa: BLE001 - the link must outlive any one bad event
                log.exception("ARI event loop failed; reconnecting")
                self.connected.clear()
            await asyncio.sleep(backoff.next_delay())

    async def _safely(self, hook: Callable[[], Awaitable[None]]) -> None:
        try:
            await hook()
        except Exception as exc:  # noqa: BLE001 - a failed hook must not cost the link
            log.warning("ARI on-connect hook failed: %s", exc)

    # -- events ------------------------------------------------------------------------------
    def dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        log.debug("ARI event %s %s", kind, (event.get("channel") or {}).get("id", ""))
        if kind == "ApplicationReplaced":
            log.error("another client took over ARI application %r", self.app)
            return
        channel = event.get("channel") or {}
        channel_id = str(channel.get("id", ""))
        if kind == "StasisStart":
            self._start(channel, [str(a) for a in event.get("args") or []])
            return
        if kind in ("PlaybackFinished", "PlaybackFailed", "PlaybackStarted"):
            target = str((event.get("playback") or {}).get("target_uri", ""))
            channel_id = target.partition("channel:")[2]
        call = self.calls.get(channel_id)
        if call is None:
            return
        if kind in _ENDING:
            call.deliver({"type": END, "reason": kind})
        else:
            call.deliver(event)

    def _start(self, channel: dict[str, Any], args: list[str]) -> None:
        channel_id = str(channel.get("id", ""))
        if aux_owner(channel_id) is not None:  # our own snoop or media channel
            self._entered.setdefault(channel_id, asyncio.Event()).set()
            return
        if channel_id in self.calls:
            return  # a call that is already ours
        dnis = args[0] if args else str((channel.get("dialplan") or {}).get("exten", ""))
        route = args[1] if len(args) > 1 and args[1] else DEFAULT_ROUTE
        audio = AriAudio(self.client, self.app, channel_id, self.in_application) if self.speech else None
        call = AriCall(self.client, channel, dnis, audio, link=self, outage_s=self.deadman_s)
        self.calls[channel_id] = call
        handler = self.handlers.get(route)
        if handler is None:
            log.error("call %s asks for route %r, which this controller does not have", channel_id, route)
            handler = self.handlers[DEFAULT_ROUTE]
        task = asyncio.create_task(self._serve(call, handler), name=f"ari-call-{channel_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def link_up(self, timeout_s: float) -> bool:
        """Wait for the events link (for a call whose request could not reach Asterisk)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.connected.wait()
        except TimeoutError:
            return False
        return True

    async def in_application(self, channel_id: str, timeout_s: float = AUX_START_TIMEOUT_S) -> None:
        """Wait for a channel we created to enter the application (AriError if it does not)."""
        entered = self._entered.setdefault(channel_id, asyncio.Event())
        try:
            async with asyncio.timeout(timeout_s):
                await entered.wait()
        except TimeoutError:
            raise AriError(f"channel {channel_id} did not enter {self.app!r} within {timeout_s:g} s") from None
        finally:
            self._entered.pop(channel_id, None)

    async def _serve(self, call: AriCall, handler: Handler) -> None:
        deadman = asyncio.create_task(self._deadman(call))
        try:
            await handler(call)
        finally:
            deadman.cancel()
            audio = call.audio()
            if audio is not None:
                await audio.close()
            self.calls.pop(call.id, None)
            await self._leave(call)

    async def _leave(self, call: AriCall) -> None:
        """Back to the dialplan, which acts on IVR_RESULT (queue, hangup) or falls back."""
        if call.ended:
            return
        try:
            await call.return_to_dialplan()
        except ChannelFailed as exc:
            log.info("call %s: could not return to the dialplan (%s)", call.id, exc)

    async def _deadman(self, call: AriCall) -> None:
        while not call.ended:
            try:
                await self.client.post(f"channels/{call.id}/variable", variable="TIMEOUT(absolute)",
                                       value=str(self.deadman_s))
            except AriError:
                pass  # the next renewal tries again; the timer set last still runs
            await asyncio.sleep(self.deadman_s / 3)

    # -- after a (re)connect -------------------------------------------------------------
    async def _readopt(self) -> None:
        try:
            state = await self.client.get(f"applications/{self.app}")
        except AriError as exc:
            log.warning("cannot list the channels of %r after connecting: %s", self.app, exc)
            return
        present = {str(c) for c in (state or {}).get("channel_ids", [])}
        for channel_id, call in list(self.calls.items()):
            if channel_id not in present:
                log.info("call %s left the application while the link was down: session ended", channel_id)
                call.remember(CALL_READOPTED, {"outcome": "ended", "reason": "left while the link was down"})
                call.deliver({"type": END, "reason": "gone after reconnect"})
            elif self.connections > 1:
                await self._resume(call)
        for channel_id in sorted(present - set(self.calls)):
            owner = aux_owner(channel_id)
            if owner is None:
                if await self._claimed(channel_id):  # else a peer controller has moved it already
                    await self._fallback_orphan(channel_id)
            elif owner not in self.calls:
                await self._hang_up(channel_id)

    async def _resume(self, call: AriCall) -> None:
        playing = call.playing
        if playing is not None:
            try:
                await self.client.get(f"playbacks/{playing}")
            except AriError:  # finished while we were away: its event is lost, the answer is not
                call.deliver({"type": "PlaybackFinished", "playback": {"id": playing}})
        log.info("call %s resumed after the ARI link came back", call.id)
        call.remember(CALL_READOPTED, {"outcome": "resumed", "reason": "events link restored"})

    async def adopt_orphans_of(self, peer: str) -> int:
        """Send on the calls left in a dead peer controller's application (``peer``) on this
        Asterisk; how many. Each channel is claimed first (:attr:`claim`), so two survivors
        never both move a caller. The peer's snoop and media channels are hung up."""
        try:
            state = await self.client.get(f"applications/{peer}")
        except AriError:  # 404: the application is gone (no channel kept it), nothing left
            return 0
        moved = 0
        for channel_id in sorted(str(c) for c in (state or {}).get("channel_ids", [])):
            if not await self._claimed(channel_id):
                continue
            if aux_owner(channel_id) is not None:
                await self._hang_up(channel_id)
                continue
            await self._fallback_orphan(channel_id, PEER_LOST_REASON, app=peer)
            moved += 1
        return moved

    async def _claimed(self, channel_id: str) -> bool:
        return self.claim is None or await self.claim(channel_id)

    async def _fallback_orphan(self, channel_id: str, reason: str = ORPHAN_REASON, *, app: str = "") -> None:
        log.warning("channel %s is in %r with no controller running it (%s): to the fallback queue",
                    channel_id, app or self.app, reason)
        how = await self._redirect_orphan(channel_id, reason)
        if how is None:
            # No AMI: ARI's continue, in the background, since it may wait for the end of a
            # prompt and the events of every other call must keep flowing meanwhile.
            chore = asyncio.create_task(self._continue_orphan(channel_id, reason), name=f"ari-orphan-{channel_id}")
            self._chores.add(chore)
            chore.add_done_callback(self._chores.discard)
            return
        await self._journal_orphan(channel_id, how, reason)

    async def _redirect_orphan(self, channel_id: str, reason: str = ORPHAN_REASON) -> str | None:
        """"redirect" once AMI has moved the channel; None when it could not (no AMI, no name)."""
        if self.redirect is None:
            return None
        try:
            name = str((await self.client.get(f"channels/{channel_id}") or {}).get("name", ""))
        except AriError as exc:
            log.info("orphan %s: no channel name (%s)", channel_id, exc)
            return None
        if not name:
            return None
        try:
            await self.redirect(name, ORPHAN_CONTEXT, reason, "1")
        except IvrError as exc:
            log.info("orphan %s: AMI Redirect failed (%s), trying ARI", channel_id, exc)
            return None
        return "redirect"

    async def _continue_orphan(self, channel_id: str, reason: str = ORPHAN_REASON) -> None:
        try:
            await self.client.post(f"channels/{channel_id}/continue", context=ORPHAN_CONTEXT,
                                   extension=reason, priority=1)
        except AriError as exc:
            # Unanswered is not refused: Asterisk may carry it out when the prompt ends.
            # Either way the dead-man timer sends the caller on if nothing else does.
            log.info("orphan %s: ARI continue not confirmed (%s)", channel_id, exc)
            return
        await self._journal_orphan(channel_id, "continue", reason)

    async def _journal_orphan(self, channel_id: str, how: str, reason: str = ORPHAN_REASON) -> None:
        await self.journey.append(f"call:{channel_id}", [StampedEvent(
            time.time(), VOICE, channel_id, CALL_READOPTED,
            {"outcome": "fallback", "reason": reason, "via": how})])

    async def _hang_up(self, channel_id: str) -> None:
        try:
            await self.client.delete(f"channels/{channel_id}")
        except AriError:
            pass


def _raise_if_cancelling() -> None:
    """Stop when this task was cancelled, even if a library below swallowed the CancelledError
    (asyncio.wait_for on Python 3.11 does when the awaited answer arrives at the same moment):
    otherwise the loop would go back to waiting for events and the controller never stops."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
