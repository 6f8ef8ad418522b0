"""A small AMI client on panoramisk: login with a deadline, typed failures, event fan-out.

panoramisk retries a refused connection forever and reports a failed login only through a
callback; here both become an :class:`AmiUnavailable` within ``connect_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from panoramisk import Manager

from ivr.errors import IvrError

log = logging.getLogger(__name__)

#: Events a filtered session still needs: panoramisk waits for FullyBooted before it sends queued
#: actions, and an async Originate is answered by an OriginateResponse event.
ALWAYS = frozenset({"FullyBooted", "OriginateResponse"})

Event = Mapping[str, str]
Listener = Callable[[Event], None]


class AmiUnavailable(IvrError):
    error_id = "ami-unavailable"


class AmiActionFailed(IvrError):
    error_id = "ami-action-failed"


class AmiClient:
    def __init__(self, host: str, port: int, user: str, secret: str, *, connect_timeout: float = 5.0,
                 events: Sequence[str] | None = None) -> None:
        """``events``: the only AMI events this session wants (a ``Filter`` set at every login), or
        None for all. Asterisk sends a few dozen events per call (VarSet, Newexten, AGIExec...);
        parsing the ones nobody reads cost the controller most of its CPU per call."""
        self.host, self.port, self.user, self._secret = host, port, user, secret
        self.connect_timeout = connect_timeout
        self.events = tuple(events) if events is not None else None
        self._manager: Manager | None = None
        self._listeners: list[Listener] = []
        self._on_relogin: list[Callable[[], Awaitable[None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.logins = 0  # 1 after connect(); each reconnect panoramisk makes by itself adds one

    @property
    def connected(self) -> bool:
        """Logged in (panoramisk then reconnects by itself after a drop)."""
        return self._manager is not None

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _filter(self, manager: Manager) -> None:
        """Ask Asterisk for this session's events only (AMI ``Filter``, per session, so at every login)."""
        assert self.events is not None
        names = "|".join(sorted(set(self.events) | ALWAYS))
        answer = manager.send_action({"Action": "Filter", "Operation": "Add", "Filter": f"^Event: ({names})\r"})

        def checked(future: asyncio.Future[Any]) -> None:
            message = future.result() if not future.cancelled() and future.exception() is None else None
            if message is None or str(message.get("Response", "")).lower() != "success":
                log.warning("AMI event filter not set on %s:%d (%s): every event will be parsed", self.host,
                            self.port, message.get("Message") if message is not None else future)

        answer.add_done_callback(checked)

    def after_relogin(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` each time panoramisk logs in again by itself (Asterisk restarted, the link
        dropped): what the controller told the old Asterisk, or heard from it, needs redoing."""
        self._on_relogin.append(hook)

    def _relogged(self) -> None:
        for hook in list(self._on_relogin):
            task = asyncio.get_running_loop().create_task(self._run_hook(hook))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        try:
            await hook()
        except Exception as exc:  # noqa: BLE001 - the next re-login tries again
            log.warning("after AMI reconnected to %s:%d: %s", self.host, self.port, exc)

    def _dispatch(self, _manager: Manager, message: Any) -> None:
        # A header sent several times (ChanVariable with channelvars=) arrives as a list.
        event = {str(k): "\n".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in dict(message).items()}
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("AMI listener failed on %s", event.get("Event"))

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        logged_in: asyncio.Future[bool] = loop.create_future()

        def on_login(m: Manager) -> None:
            self.logins += 1
            if self.events is not None:
                self._filter(m)
            if not logged_in.done():
                logged_in.set_result(True)
            elif self.logins > 1:
                log.info("AMI logged in again on %s:%d (login %d)", self.host, self.port, self.logins)
                self._relogged()

        manager = Manager(loop=loop, host=self.host, port=self.port, username=self.user, secret=self._secret,
                          ping_delay=10, reconnect_timeout=1, on_login=on_login,
                          on_connect=lambda _m: None, on_disconnect=lambda _m, _e: None)
        manager.log.setLevel(logging.CRITICAL)  # refusals are reported once, below, not per retry
        manager.register_event("*", self._dispatch)
        manager.connect()
        self._manager = manager
        try:
            async with asyncio.timeout(self.connect_timeout):
                await logged_in
        except TimeoutError:
            authenticated = getattr(manager, "authenticated", None)
            manager.close()
            self._manager = None
            if authenticated is False:
                raise AmiUnavailable(f"AMI login as {self.user!r} on {self.host}:{self.port} was refused",
                                     hint="check [ami] user/secret/permit in config/ivr.toml") from None
            raise AmiUnavailable(f"no AMI on {self.host}:{self.port} within {self.connect_timeout:.0f} s",
                                 hint="is Asterisk running? `ivr asterisk status`") from None

    async def _send(self, action: Mapping[str, str], timeout: float) -> list[dict[str, str]]:
        """Every message answering ``action``: the response first, then any events of its list."""
        if self._manager is None:
            raise AmiUnavailable("AMI is not connected")
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the result and drops a
            # cancellation that arrives as the answer does, and ``ivr serve`` stopped with a SIGTERM
            # right after connecting then waited for ever in the task that had swallowed it.
            async with asyncio.timeout(timeout):
                response = await self._manager.send_action(dict(action))
        except TimeoutError:
            raise AmiActionFailed(f"AMI {action.get('Action')} got no response within {timeout:.0f} s") from None
        messages = response if isinstance(response, list) else [response]
        return [{str(k): str(v) for k, v in dict(m).items()} for m in messages]

    async def action(self, action: Mapping[str, str], timeout: float = 10.0) -> Mapping[str, str]:
        result = (await self._send(action, timeout))[0]
        if result.get("Response", "").lower() == "error":
            raise AmiActionFailed(f"AMI {action.get('Action')} failed: {result.get('Message', '')}")
        return result

    async def _listing(self, action: Mapping[str, str], timeout: float = 10.0) -> list[dict[str, str]]:
        """An action answered by a list of events (``EventList``); the events, without the frame."""
        head, *rest = await self._send(action, timeout)
        if head.get("Response", "").lower() == "error":
            if "not found" in head.get("Message", "").lower():
                return []
            raise AmiActionFailed(f"AMI {action.get('Action')} failed: {head.get('Message', '')}")
        return [m for m in rest if "Event" in m]

    async def queue_status(self) -> list[dict[str, str]]:
        """``QueueStatus``: every queue's QueueParams, QueueMember and QueueEntry events."""
        return await self._listing({"Action": "QueueStatus"})

    async def channel_names(self) -> list[str]:
        """``CoreShowChannels``: the name of every channel Asterisk has now."""
        return [r["Channel"] for r in await self._channels() if "Channel" in r]

    async def core_identity(self) -> tuple[str, str]:
        """``(system name, startup time)`` of the Asterisk behind this link: a new startup time
        after a re-login means Asterisk restarted (and forgot every call it had)."""
        settings = await self.action({"Action": "CoreSettings"})
        status = await self.action({"Action": "CoreStatus"})
        started = f"{status.get('CoreStartupDate', '')} {status.get('CoreStartupTime', '')}".strip()
        return settings.get("SystemName", ""), started

    async def channel_ids(self) -> set[str]:
        """``CoreShowChannels``: the uniqueid of every channel Asterisk has now."""
        return {r["Uniqueid"] for r in await self._channels() if r.get("Uniqueid")}

    async def _channels(self) -> list[dict[str, str]]:
        """``CoreShowChannels``: one row per channel Asterisk has now."""
        return [r for r in await self._listing({"Action": "CoreShowChannels"}) if r.get("Event") == "CoreShowChannel"]

    async def redirect(self, channel: str, context: str, extension: str, priority: str = "1") -> None:
        """``Redirect``: move ``channel`` (by name) to a place in the dialplan at once. It cuts
        whatever the channel is doing, a prompt or a Stasis application included."""
        await self.action({"Action": "Redirect", "Channel": channel, "Context": context, "Exten": extension,
                           "Priority": priority})

    # AstDB, for the number-to-driver table (ivr.voice.drivers) and the callbacks' dial results
    async def db_tree(self, family: str) -> dict[str, str]:
        prefix = f"/{family}/"
        rows = await self._listing({"Action": "DBGetTree", "Family": family})
        return {r["Key"][len(prefix):]: r.get("Val", "") for r in rows
                if r.get("Event") == "DBGetTreeResponse" and r.get("Key", "").startswith(prefix)}

    async def db_put(self, family: str, key: str, value: str) -> None:
        await self.action({"Action": "DBPut", "Family": family, "Key": key, "Val": value})

    async def db_del(self, family: str, key: str) -> None:
        try:
            await self.action({"Action": "DBDel", "Family": family, "Key": key})
        except AmiActionFailed as exc:
            if "could not be deleted" not in str(exc):  # already gone: what we wanted
                raise

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    async def __aenter__(self) -> AmiClient:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.close()
