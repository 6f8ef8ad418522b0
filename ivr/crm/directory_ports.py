"""The ports between the IVR and whatever CRM holds the customers.

Small protocols so a test fake, the embedded SQLite store and an HTTP client for a
real CRM are interchangeable, and each user depends only on what it calls: the
caller-ID lookup needs :class:`NumberDirectory`, nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from ivr.crm.customer import Customer

# Named actions the demo menus run (config/menus/*.yaml). One place, so menus and
# adapters cannot drift apart silently.
BALANCE = "balance"  # no args -> {balance, currency}
SERVICE_ON = "service_on"  # args {service} -> {service, enabled, changed}
SERVICE_OFF = "service_off"  # args {service} -> {service, enabled, changed}
TARIFF_CHANGE = "tariff_change"  # args {tariff} -> {tariff, previous, changed}

#: Actions that change the customer's account: these are the ones made idempotent.
WRITE_ACTIONS = frozenset({SERVICE_ON, SERVICE_OFF, TARIFF_CHANGE})
ACTIONS = WRITE_ACTIONS | {BALANCE}

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class ActionOutcome:
    """What a named action did. ``ok=False`` is a business refusal (``data["error"]`` says why).

    ``replayed`` is true when the directory had already applied this idempotency key
    and answered with the stored first outcome instead of writing again.
    """

    name: str
    ok: bool
    data: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    replayed: bool = False


class NumberDirectory(Protocol):
    async def by_number(self, e164: str) -> Customer | None:
        """The customer calling from ``e164``, or None if the CRM does not know the number.

        Raises :class:`ivr.crm.errors.CrmError` when the CRM cannot answer.
        """
        ...


class IdDirectory(Protocol):
    async def by_id(self, customer_id: str) -> Customer | None:
        """The customer with this CRM id (the journey key of a known customer), or None.

        Raises :class:`ivr.crm.errors.CrmError` when the CRM cannot answer (or cannot be
        asked: an HTTP CRM whose mapping has no ``by_id``).
        """
        ...


class CustomerDirectory(NumberDirectory, Protocol):
    async def by_account(self, account: str, pin: str) -> Customer | None:
        """The customer with this account number if ``pin`` is theirs; None otherwise.

        A wrong PIN and an unknown account look the same to the caller, on purpose.
        """
        ...

    async def run_action(self, name: str, args: Mapping[str, Any], customer_id: str,
                         idempotency_key: str) -> ActionOutcome:
        """Run a named action for a customer, at most once per ``idempotency_key``.

        A repeated key returns the first outcome (``replayed=True``) without writing.
        Raises :class:`ivr.crm.errors.CrmError` when the CRM cannot answer.
        """
        ...


class OpenDirectory(CustomerDirectory, IdDirectory, Protocol):
    """A directory the composition root opened and must close: the embedded SQLite one or an HTTP CRM."""

    async def aclose(self) -> None: ...
