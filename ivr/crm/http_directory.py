"""A real CRM over HTTP (aiohttp client), shaped by an :class:`HttpCrmConfig`.

This module is the only one that knows HTTP: status codes, bodies, headers. It turns
them into the directory's vocabulary: a customer, "not a customer" (404 or no record),
:class:`CrmUnavailable` (unreachable, 5xx, 408, 429, credentials refused) or
:class:`CrmBadResponse` (not JSON, too big, wrong types). It sets no time budget of its
own beyond a backstop timeout; the lookup decides how long a call may wait.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from ivr.crm.customer import Customer
from ivr.crm.directory_ports import ActionOutcome
from ivr.crm.errors import CrmBadResponse, CrmUnavailable
from ivr.crm.http_config import HttpCrmConfig
from ivr.crm.http_mapping import MISSING, customer_from_record, dig

#: Statuses that mean "try again later" rather than "you asked wrongly".
RETRYABLE_STATUSES = frozenset({408, 429})
#: An action refused for a business reason; the body says why.
REFUSAL_STATUSES = frozenset({400, 404, 409, 422})
#: The CRM's answer that it had already applied this idempotency key (Stripe's convention).
REPLAYED_HEADER = "Idempotent-Replayed"


class HttpDirectory:
    """:class:`ivr.crm.directory_ports.CustomerDirectory` for a CRM with a JSON HTTP API.

    Pass ``session`` to share a connection pool; otherwise one is opened on first use
    (inside the running loop) and closed by :meth:`close`.
    """

    def __init__(self, config: HttpCrmConfig, *, token: str | None = None,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.config = config
        self._session = session
        self._owns_session = session is None
        headers = {"Accept": "application/json", **config.headers}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers

    async def __aenter__(self) -> HttpDirectory:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def aclose(self) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    # -- the port ------------------------------------------------------------------------

    async def by_number(self, e164: str) -> Customer | None:
        operation = "by_number"
        url = self._url(self.config.by_number_url, number=e164, digits=e164.lstrip("+"))
        status, body, _ = await self._request(operation, "GET", url)
        if status == 404:
            return None
        self._raise_for_status(operation, status)
        return self._customer(operation, body, self.config.record_path)

    async def by_id(self, customer_id: str) -> Customer | None:
        """The record by CRM id (``by_id.url``), read with the same field mapping as by number."""
        operation = "by_id"
        if self.config.by_id_url is None:
            raise CrmUnavailable("lookup by customer id is not configured (by_id.url)",
                                 operation=operation, error_id="crm-not-configured")
        status, body, _ = await self._request(operation, "GET", self._url(self.config.by_id_url,
                                                                          customer_id=customer_id))
        if status == 404:
            return None
        self._raise_for_status(operation, status)
        return self._customer(operation, body, self.config.record_path)

    async def by_account(self, account: str, pin: str) -> Customer | None:
        operation = "by_account"
        if self.config.by_account_url is None:
            raise CrmUnavailable("identification by account is not configured (by_account.url)",
                                 operation=operation, error_id="crm-not-configured")
        url = self._url(self.config.by_account_url, account=account)
        # The PIN travels in the body only: URLs end up in access logs.
        status, body, _ = await self._request(operation, "POST", url, {"account": account, "pin": pin})
        if status == 404:
            return None
        self._raise_for_status(operation, status)
        return self._customer(operation, body, self.config.account_record_path)

    async def run_action(self, name: str, args: Mapping[str, Any], customer_id: str,
                         idempotency_key: str) -> ActionOutcome:
        operation = f"action {name}"
        if self.config.action_url is None:
            raise CrmUnavailable("actions are not configured (action.url)", operation=operation,
                                 error_id="crm-not-configured")
        url = self._url(self.config.action_url, customer_id=customer_id, name=name)
        status, body, headers = await self._request(operation, "POST", url, {"args": dict(args)},
                                                    {"Idempotency-Key": idempotency_key})
        replayed = headers.get(REPLAYED_HEADER, "").lower() == "true"
        if status in REFUSAL_STATUSES:
            return ActionOutcome(name, False, {"error": self._error_text(body, f"CRM refused (HTTP {status})")},
                                 replayed)
        self._raise_for_status(operation, status)
        ok = dig(body, self.config.action_ok_path)
        if not isinstance(ok, bool):
            raise CrmBadResponse(f"{self.config.action_ok_path!r} is {_kind(ok)}, not true/false",
                                 operation=operation)
        data = dig(body, self.config.action_data_path)
        if data is MISSING or data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise CrmBadResponse(f"{self.config.action_data_path!r} is {_kind(data)}, not an object",
                                 operation=operation)
        if not ok:
            data = {**data, "error": self._error_text(body, "CRM refused the action")}
        return ActionOutcome(name, ok, data, replayed)

    # -- HTTP --------------------------------------------------------------------------------

    def _url(self, template: str, **values: str) -> URL:
        quoted = {key: quote(value, safe="") for key, value in values.items()}
        return URL(self.config.base_url + template.format_map(quoted), encoded=True)

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout_s))
        return self._session

    async def _request(self, operation: str, method: str, url: URL, payload: Mapping[str, Any] | None = None,
                       extra_headers: Mapping[str, str] | None = None) -> tuple[int, Any, Mapping[str, str]]:
        """One exchange: (status, parsed JSON body or None, headers). Bodies are read bounded."""
        headers = dict(self._headers)
        data: bytes | None = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(payload, default=str).encode("utf-8")
        if extra_headers:
            headers.update(extra_headers)
        limit = self.config.max_body_bytes
        try:
            async with self._session_now().request(method, url, data=data, headers=headers) as resp:
                status, reply_headers = resp.status, dict(resp.headers)
                raw = await read_bounded(resp, limit)
        except (aiohttp.ClientError, OSError) as exc:  # OSError covers TimeoutError too
            raise CrmUnavailable(f"{method} {url.path}: {type(exc).__name__}: {exc}".rstrip(": "),
                                 operation=operation) from exc
        if raw is None:
            raise CrmBadResponse(f"reply is larger than {limit} bytes", operation=operation)
        return status, parse_json(raw, status, operation), reply_headers

    def _raise_for_status(self, operation: str, status: int) -> None:
        if 200 <= status < 300:
            return
        if status >= 500 or status in RETRYABLE_STATUSES:
            raise CrmUnavailable(f"CRM answered HTTP {status}", operation=operation)
        if status in (401, 403):
            raise CrmUnavailable(f"CRM refused our credentials (HTTP {status})", operation=operation,
                                 hint=f"check the token in ${self.config.token_env or '<token_env>'}")
        raise CrmBadResponse(f"unexpected HTTP {status}", operation=operation)

    def _customer(self, operation: str, body: Any, record_path: str) -> Customer | None:
        if body is None:
            raise CrmBadResponse("reply has no JSON body", operation=operation)
        record = dig(body, record_path)
        if record is MISSING or record is None or record == []:
            return None
        return customer_from_record(record, self.config.fields, operation=operation)

    def _error_text(self, body: Any, fallback: str) -> str:
        message = dig(body, self.config.action_error_path)
        if isinstance(message, Mapping):
            message = message.get("message")
        return message if isinstance(message, str) and message else fallback


async def read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None once it is known to exceed ``limit`` bytes (without buffering the rest)."""
    if resp.content_length is not None and resp.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)


def parse_json(raw: bytes, status: int, operation: str) -> Any:
    """The body as JSON with exact money (Decimal, not float); None for an empty body.

    Error statuses may carry HTML error pages: those parse to None rather than fail,
    since the status alone decides what happens next.
    """
    if not raw.strip():
        return None
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        if not 200 <= status < 300:
            return None
        raise CrmBadResponse(f"reply is not JSON ({len(raw)} bytes): {exc}", operation=operation) from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number we accept")


def _kind(value: Any) -> str:
    return "missing" if value is MISSING else type(value).__name__
