"""Identification without caller ID: account number and PIN, checked by the CRM.

Used when the number is unknown or withheld. The PIN is passed straight to the
directory (which compares hashes in constant time) and never stored or logged here.
"""

from __future__ import annotations

import logging
import re

from ivr.crm.customer import Customer
from ivr.crm.directory_ports import CustomerDirectory
from ivr.crm.errors import CrmError
from ivr.deadlines import within

log = logging.getLogger(__name__)
IDENTIFY_ACTION = "identify"
_DIGITS = re.compile(r"^[0-9]{1,32}$")


class AccountIdentifier:
    def __init__(self, directory: CustomerDirectory, *, budget_s: float = 0.3) -> None:
        self.directory = directory
        self.budget_s = budget_s

    async def identify(self, account: str, pin: str) -> Customer | None:
        """The customer, or None for a wrong pair, malformed input or a CRM that cannot answer."""
        if not (_DIGITS.match(account or "") and _DIGITS.match(pin or "")):
            return None
        try:
            async with within(self.budget_s):
                return await self.directory.by_account(account, pin)
        except (TimeoutError, CrmError) as exc:
            log.warning("identification by account failed: %s", exc)
            return None
