"""The customer as the IVR knows them: one immutable value per CRM record.

Every adapter (SQLite, HTTP) turns its storage into this value, so the lookup, the
cache and the menu templates see one shape whatever CRM sits behind. Secrets are not
part of it: the PIN hash stays inside the directory that checks it, so no template,
log line or journey event can leak it by accident.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from ivr.crm.errors import CustomerInvalid

LANGUAGES = ("en", "ru")
#: Segments the demo menus and routing rules know; a CRM may send others (they are kept).
KNOWN_SEGMENTS = ("vip", "business", "regular")

_NO_SERVICES: Mapping[str, bool] = MappingProxyType({})
_NO_SCORES: Mapping[str, Decimal] = MappingProxyType({})


@dataclass(frozen=True)
class Customer:
    """One CRM record. ``services`` maps every service the customer may have to on/off."""

    id: str
    number: str  # E.164, the caller ID they are looked up by
    name: str
    language: str = "en"
    segment: str = "regular"
    balance: Decimal = Decimal("0")
    currency: str = "RUB"
    debt: Decimal = Decimal("0")
    overdue_days: int = 0
    services: Mapping[str, bool] = field(default_factory=lambda: _NO_SERVICES)
    tariff: str | None = None
    manager: str | None = None  # agent id of the personal manager ("agent2")
    region: str | None = None  # area the number belongs to, for routing to a local office
    account: str | None = None  # account number: identifies the caller when caller ID is withheld
    blacklisted: bool = False
    last_agent: str | None = None  # who handled the previous call, for "same agent again"
    last_contact: dt.date | None = None
    offer: str | None = None  # the code of the offer the CRM picked for this customer now
    offer_text: str | None = None  # what to tell them about it, in their language
    # Interest by topic (roaming: 0.9), for menus that offer the likeliest option first (`rank`)
    scores: Mapping[str, Decimal] = field(default_factory=lambda: _NO_SCORES)

    def __post_init__(self) -> None:
        def bad(message: str) -> CustomerInvalid:
            return CustomerInvalid(message, operation=f"customer {self.id!r}")

        if not self.id:
            raise bad("empty id")
        if not self.number.startswith("+") or not self.number[1:].isdigit():
            raise bad(f"number {self.number!r} is not E.164")
        if self.language not in LANGUAGES:
            raise bad(f"language {self.language!r} is not one of {', '.join(LANGUAGES)}")
        for name in ("balance", "debt"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise bad(f"{name} {value!r} is not a finite Decimal")
        if self.debt < 0:
            raise bad(f"debt {self.debt} is negative")
        if isinstance(self.overdue_days, bool) or not isinstance(self.overdue_days, int) or self.overdue_days < 0:
            raise bad(f"overdue_days {self.overdue_days!r} is not a whole number of days")
        if not all(isinstance(k, str) and isinstance(v, bool) for k, v in self.services.items()):
            raise bad("services must map service codes to true/false")
        if not all(isinstance(k, str) and isinstance(v, Decimal) and v.is_finite() for k, v in self.scores.items()):
            raise bad("scores must map topics to finite Decimals")
        # A caller of the constructor keeps no handle on our services: freeze a copy.
        object.__setattr__(self, "services", MappingProxyType(dict(self.services)))
        object.__setattr__(self, "scores", MappingProxyType(dict(self.scores)))

    @property
    def enabled_services(self) -> tuple[str, ...]:
        return tuple(sorted(code for code, on in self.services.items() if on))

    def template_fields(self) -> dict[str, Any]:
        """What menu templates read as ``customer.*`` (see docs/menus.md, "Template context").

        Fields the CRM has no value for are left out rather than set to None, so
        ``customer.tariff is defined`` means "we know the tariff". ``services`` is the
        list of codes that are *on*, because templates test ``'roaming' in
        customer.services`` and membership in an on/off mapping would be true for "off".
        """
        fields: dict[str, Any] = {
            "id": self.id,
            "number": self.number,
            "name": self.name,
            "language": self.language,
            "segment": self.segment,
            "balance": self.balance,
            "currency": self.currency,
            "debt": self.debt,
            "overdue_days": self.overdue_days,
            "services": list(self.enabled_services),
            "blacklisted": self.blacklisted,
            "scores": dict(self.scores),
        }
        optional = {
            "tariff": self.tariff,
            "manager": self.manager,
            "region": self.region,
            "account": self.account,
            "last_agent": self.last_agent,
            "last_contact": self.last_contact,
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        if self.offer:
            fields["offer"] = {"code": self.offer, "text": self.offer_text or ""}
        return fields
