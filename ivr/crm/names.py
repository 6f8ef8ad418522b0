"""The customer's name for the agent's page, asked of the CRM when the page is shown.

The journey deliberately holds no personal data: it keys on the customer id and lets the
CRM stay the owner of names. The agent desktop asks here, within a budget, and shows the
page without a name when the CRM cannot answer.
"""

from __future__ import annotations

from ivr.crm.directory_ports import IdDirectory
from ivr.deadlines import within

#: The page waits this long for a name at most; a slower CRM costs the name, not the page.
NAME_BUDGET_S = 0.5


class DirectoryNames:
    """:class:`ivr.agent.ports.CustomerNames` over a directory that finds customers by id."""

    def __init__(self, directory: IdDirectory, *, budget_s: float = NAME_BUDGET_S) -> None:
        self.directory = directory
        self.budget_s = budget_s

    async def name_of(self, customer_key: str) -> str | None:
        if customer_key.startswith("+") or customer_key.startswith("call:"):
            return None  # the journey of a number or a withheld caller: no customer, no name
        async with within(self.budget_s):
            customer = await self.directory.by_id(customer_key)
        return customer.name if customer is not None else None
