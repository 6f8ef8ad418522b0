"""Runs the actions declared in ``config/actions.yaml`` against their HTTP services.

An :class:`~ivr.crm.ports.ActionService` like the CRM's: every channel's menus call it by
name, and it passes any name it does not hold to ``inner`` (the built-in CRM actions).
What a caller hears never depends on how the service failed, only that it did, but the
menu can tell why from ``result.reason``:

- ``invalid``: an argument did not fit its declared type (checked before sending);
- ``not_identified``: the action needs a customer and the caller is not one;
- ``refused``: the service said no (a ``failure.statuses`` answer, or ``ok`` false);
  ``result.error`` holds its message;
- ``timeout``: no answer within the service's ``timeout_ms``;
- ``unavailable``: unreachable, a 5xx, a reply we cannot read, or the circuit is open.

Every request carries an ``Idempotency-Key`` built from the interaction, the action and
its arguments, as the CRM actions do; an action marked ``retry_safe`` is tried once more
after a fast failure (refused connection, 5xx) while its time lasts. Each service has
its own circuit breaker: a dead order system does not slow the card service down.
Arguments are never logged (one may be a PIN the caller keyed at a masked prompt).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from ivr.crm.actions import idempotency_key
from ivr.crm.breaker import CircuitBreaker
from ivr.crm.declared_config import DeclaredAction, DeclaredActions
from ivr.crm.errors import CrmBadResponse
from ivr.crm.http_directory import RETRYABLE_STATUSES, parse_json, read_bounded
from ivr.crm.http_mapping import MISSING, dig
from ivr.crm.ports import ActionService
from ivr.deadlines import within
from ivr.flow.action_signature import check_args
from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult

log = logging.getLogger(__name__)

INVALID, NOT_IDENTIFIED, REFUSED, TIMEOUT, UNAVAILABLE = "invalid", "not_identified", "refused", "timeout", "unavailable"
REASONS = (INVALID, NOT_IDENTIFIED, REFUSED, TIMEOUT, UNAVAILABLE)
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_ERROR_CHARS = 200  # a service's message is shown to a caller: a sentence, not a stack trace


@dataclass(frozen=True)
class Exchange:
    """One HTTP answer: its status and the parsed JSON body (None when empty or unreadable)."""

    status: int
    body: Any


class Failed(Exception):
    """This attempt did not get an answer we can use; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class DeclaredHttpActions:
    """The declared actions first, every other name to ``inner``."""

    def __init__(self, declared: DeclaredActions, inner: ActionService, *, env: Mapping[str, str],
                 session: aiohttp.ClientSession | None = None) -> None:
        self.declared = declared
        self.inner = inner
        self._env = env
        self._session = session
        self._owns_session = session is None
        self.breakers: dict[str, CircuitBreaker] = {}

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, name: str, args: Mapping[str, Any], context: CallerContext,
                  *, interaction: str) -> ActionResult:
        action = self.declared.actions.get(name)
        if action is None:
            return await self.inner.run(name, args, context, interaction=interaction)
        problem = check_args(action.signature, args)
        if problem is not None:
            return _failed(action, INVALID, f"argument {problem}")
        customer_id = context.customer.get("id")
        if action.needs_customer and not customer_id:
            return _failed(action, NOT_IDENTIFIED, "the caller is not identified as a customer")
        breaker = self.breakers.setdefault(action.service.name, CircuitBreaker())
        if not breaker.allow():
            return _failed(action, UNAVAILABLE, f"service {action.service.name} circuit open; "
                                                f"next try in {breaker.retry_in_s():.1f} s")
        try:
            exchange = await self._ask(action, args, context, idempotency_key(interaction, name, args))
        except Failed as exc:
            if exc.reason == REFUSED:
                breaker.record_success()  # the service is up: it said no
            else:
                breaker.record_failure()
            return _failed(action, exc.reason, exc.message)
        except BaseException:
            breaker.release()
            raise
        breaker.record_success()
        return self._read(action, exchange)

    # -- asking ------------------------------------------------------------------------------

    async def _ask(self, action: DeclaredAction, args: Mapping[str, Any], context: CallerContext,
                   key: str) -> Exchange:
        """The service's answer within its time, retried once after a fast failure when safe."""
        deadline = time.monotonic() + action.service.timeout_s
        attempts = 2 if action.retry_safe else 1
        last = Failed(TIMEOUT, f"no answer within {action.service.timeout_s * 1000:.0f} ms")
        for _ in range(attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                async with within(remaining):
                    exchange = await self._exchange(action, args, context, key)
            except TimeoutError:
                raise Failed(TIMEOUT, f"{action.service.name} did not answer within "
                                      f"{action.service.timeout_s * 1000:.0f} ms") from None
            except (aiohttp.ClientError, OSError) as exc:
                last = Failed(UNAVAILABLE, f"{action.service.name}: {type(exc).__name__}: {exc}".rstrip(": "))
                continue
            except CrmBadResponse as exc:
                raise Failed(UNAVAILABLE, str(exc)) from None
            if exchange.status >= 500 or exchange.status in RETRYABLE_STATUSES:
                last = Failed(UNAVAILABLE, f"{action.service.name} answered HTTP {exchange.status}")
                continue
            return exchange
        raise last

    async def _exchange(self, action: DeclaredAction, args: Mapping[str, Any], context: CallerContext,
                        key: str) -> Exchange:
        service = action.service
        headers = {"Accept": "application/json", **service.headers, IDEMPOTENCY_HEADER: key}
        for secret in service.secrets:
            value = self._env.get(secret.env)
            if value:
                headers[secret.header] = secret.format.format(value)
        data: bytes | None = None
        if action.sends_body:
            payload = {k: v for k, v in args.items() if k not in action.path_fields}
            if action.needs_customer:
                payload["customer_id"] = context.customer.get("id")
            headers["Content-Type"] = "application/json"
            data = json.dumps(payload, default=str, ensure_ascii=False).encode("utf-8")
        url = self._url(action, args, context)
        operation = f"action {action.name}"
        async with self._session_now().request(action.method, url, data=data, headers=headers,
                                               allow_redirects=False) as resp:
            raw = await read_bounded(resp, service.max_body_bytes)
            if raw is None:
                raise CrmBadResponse(f"reply is larger than {service.max_body_bytes} bytes", operation=operation)
            return Exchange(resp.status, parse_json(raw, resp.status, operation))

    def _url(self, action: DeclaredAction, args: Mapping[str, Any], context: CallerContext) -> URL:
        values = {**{k: str(v) for k, v in args.items()},
                  "customer_id": str(context.customer.get("id") or ""),
                  "number": str(context.customer.get("number") or context.caller.get("number") or "")}
        quoted = {k: quote(v, safe="") for k, v in values.items()}
        return URL(action.service.base_url + action.path.format_map(quoted), encoded=True)

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Per-request time comes from each service's budget (within); this is the backstop.
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        return self._session

    # -- reading the answer ----------------------------------------------------------------------

    def _read(self, action: DeclaredAction, exchange: Exchange) -> ActionResult:
        status, body = exchange.status, exchange.body
        if status in action.failure_statuses:
            return _failed(action, REFUSED, _message(body, action.error_path, f"refused (HTTP {status})"), status)
        if not 200 <= status < 300:
            return _failed(action, UNAVAILABLE, f"{action.service.name} answered HTTP {status}", status)
        data = {field: value for field, path in action.result.items()
                if (value := _plain(dig(body, path))) is not MISSING}
        if action.ok_path is not None:
            ok = dig(body, action.ok_path)
            if not isinstance(ok, bool):
                return _failed(action, UNAVAILABLE, f"reply field {action.ok_path!r} is not true/false", status)
            if not ok:
                return _failed(action, REFUSED, _message(body, action.error_path, "refused"), status, data)
        return ActionResult(action.name, True, {**data, "http_status": status})


def _plain(value: Any) -> Any:
    """A reply value a template can show: scalars as they are, objects and lists as JSON text."""
    if value is MISSING or value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)[:MAX_ERROR_CHARS * 5]
    return value  # Decimal: money stays exact


def _message(body: Any, path: str, fallback: str) -> str:
    message = dig(body, path) if body is not None else MISSING
    if isinstance(message, Mapping):
        message = message.get("message")
    if isinstance(message, str) and message.strip():
        return " ".join(message.split())[:MAX_ERROR_CHARS]
    return fallback


def _failed(action: DeclaredAction, reason: str, message: str, status: int | None = None,
            data: Mapping[str, Any] | None = None) -> ActionResult:
    log.warning("declared action %s failed (%s): %s", action.name, reason, message)
    out: dict[str, Any] = {**(data or {}), "error": message, "reason": reason}
    if status is not None:
        out["http_status"] = status
    return ActionResult(action.name, False, out)

