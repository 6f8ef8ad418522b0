"""Named actions (balance, service on/off, tariff change) run against the CRM during a call.

Implements :class:`ivr.crm.ports.ActionService` for the drivers. Like the lookup it
fails soft: an unknown action, an unidentified caller, a slow or down CRM all come
back as ``ActionResult(name, False, {"error": ...})``, which the menu turns into its
``on_failure`` branch ("Sorry, the change could not be made").

A write that succeeded comes back with the customer as the CRM holds them afterwards
(``ActionResult.customer``), read by the customer's own number and checked by id: every
channel's next menu then offers what is true now, and a caller identified by account
while calling from another customer's phone never turns into that customer.

Each request carries an idempotency key built from the interaction, the action and
its arguments, so a retry after a timeout (the CRM may have applied the change just
as we gave up) cannot apply it twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ivr.crm.breaker import CircuitBreaker
from ivr.crm.directory_ports import WRITE_ACTIONS, CustomerDirectory
from ivr.crm.errors import CrmError
from ivr.crm.lookup import DEFAULT_BUDGET_S
from ivr.deadlines import within
from ivr.flow.context import CallerContext
from ivr.flow.events import ActionResult

log = logging.getLogger(__name__)


def idempotency_key(interaction: str, name: str, args: Mapping[str, Any]) -> str:
    """``<interaction>:<name>:<digest of the sorted args>``.

    The args are hashed rather than spelled out because they may hold digits the
    caller typed at a masked prompt (a PIN), and the key is stored by the CRM.
    """
    canonical = json.dumps(sorted((str(k), str(v)) for k, v in args.items()), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    return f"{interaction}:{name}:{digest}"


class CrmActions:
    """ActionService over a :class:`CustomerDirectory`.

    ``breaker`` is best shared with the :class:`ivr.crm.lookup.CrmLookup`, so a CRM the
    lookups found down is not asked for actions either. ``on_change`` is told the
    customer's number after a write, to drop their cached lookup (pass
    ``lookup.forget``): the next call must hear the new state.
    """

    def __init__(self, directory: CustomerDirectory, *, budget_s: float = DEFAULT_BUDGET_S,
                 breaker: CircuitBreaker | None = None,
                 on_change: Callable[[str], None] | None = None) -> None:
        self.directory = directory
        self.budget_s = budget_s
        self.breaker = breaker or CircuitBreaker()
        self.on_change = on_change

    async def run(self, name: str, args: Mapping[str, Any], context: CallerContext,
                  *, interaction: str) -> ActionResult:
        customer_id = context.customer.get("id")
        if not customer_id:
            return _failed(name, "caller is not identified as a customer")
        if not self.breaker.allow():
            return _failed(name, f"CRM circuit open; next try in {self.breaker.retry_in_s():.1f} s")
        key = idempotency_key(interaction, name, args)
        try:
            async with within(self.budget_s):
                outcome = await self.directory.run_action(name, args, str(customer_id), key)
        except TimeoutError:
            self.breaker.record_failure()
            # The CRM may still apply it; a retry with the same key returns that outcome.
            self._changed(name, context)
            return _failed(name, f"CRM did not answer within {self.budget_s * 1000:.0f} ms")
        except CrmError as exc:
            self.breaker.record_failure()
            return _failed(name, f"{exc.error_id}: {exc}")
        except Exception as exc:  # a bug in an adapter must not end the call
            self.breaker.record_failure()
            log.exception("CRM action %s for %s failed unexpectedly", name, customer_id)
            return _failed(name, f"{type(exc).__name__}: {exc}")
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record_success()
        if not outcome.ok:
            return ActionResult(name, False, outcome.data)
        self._changed(name, context)
        customer = await self._customer_after(context) if name in WRITE_ACTIONS else None
        return ActionResult(name, True, outcome.data, customer)

    async def _customer_after(self, context: CallerContext) -> Mapping[str, Any] | None:
        """The customer re-read after a write, or None (the CRM did not answer: the change stands)."""
        number, customer_id = context.customer.get("number"), context.customer.get("id")
        if not number:
            return None
        try:
            async with within(self.budget_s):
                customer = await self.directory.by_number(str(number))
        except (TimeoutError, CrmError) as exc:
            log.warning("customer %s not re-read after a change: %s", customer_id, exc)
            return None
        if customer is None or customer.id != str(customer_id):
            return None
        return customer.template_fields()

    def _changed(self, name: str, context: CallerContext) -> None:
        """A write may have happened: whatever was cached about this customer is stale."""
        number = context.customer.get("number")
        if name in WRITE_ACTIONS and number and self.on_change is not None:
            self.on_change(str(number))


def _failed(name: str, error: str) -> ActionResult:
    log.warning("CRM action %s failed: %s", name, error)
    return ActionResult(name, False, {"error": error})
