"""Tell Asterisk which driver answers each service number, without a dialplan reload.

The dialplan reads ``${DB(ivr_driver/<number>)}`` when a call arrives (``ari`` sends it to
the Stasis application, anything else to FastAGI). The controller writes that AstDB family
over AMI (ARI may not: ``DB()`` is a privilege-escalating function that Asterisk refuses
from ARI) when AMI comes up, when the ARI link comes back and after every reload of
numbers.yaml, so an admin moves a number between drivers by editing one line. The AstDB
is on disk: the choice survives an Asterisk restart, and a number written nowhere is
FastAGI's. Numbers are written before stale ones are deleted, so no call ever sees a gap.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from ivr.flow.model import Tree
from ivr.voice.ports import AGI

log = logging.getLogger(__name__)
FAMILY = "ivr_driver"


class AstDb(Protocol):
    async def db_tree(self, family: str) -> dict[str, str]: ...

    async def db_put(self, family: str, key: str, value: str) -> None: ...

    async def db_del(self, family: str, key: str) -> None: ...


def wanted(tree: Tree) -> dict[str, str]:
    """Every voice number of the tree (USSD codes excluded) and its driver."""
    return {dnis: tree.drivers.get(dnis, AGI) for dnis in tree.numbers
            if dnis and dnis[0].isdigit() and "#" not in dnis}


async def publish_drivers(db: AstDb, table: Mapping[str, str]) -> None:
    current = await db.db_tree(FAMILY)
    for dnis, driver in sorted(table.items()):
        if current.get(dnis) != driver:
            await db.db_put(FAMILY, dnis, driver)
    for dnis in sorted(set(current) - set(table)):
        await db.db_del(FAMILY, dnis)
    log.info("Asterisk knows the driver of %d numbers (%s on ARI)", len(table),
             ", ".join(sorted(d for d, v in table.items() if v != AGI)) or "none")
