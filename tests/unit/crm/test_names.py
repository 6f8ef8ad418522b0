"""The agent page's customer name comes from the CRM by customer id, never from the journey."""

from __future__ import annotations

import pytest

from ivr.crm.names import DirectoryNames
from ivr.crm.sqlite_directory import SqliteDirectory


@pytest.mark.parametrize(("key", "name"), [
    ("C-208812", "Ivan"),  # a known customer's journey key is their CRM id
    ("C-000000", None),  # no such customer
    ("+79990001122", None),  # the journey of a number the CRM does not know
    ("call:1700000000.5", None),  # a withheld caller ID
])
async def test_a_name_is_found_by_the_journey_key(demo_directory: SqliteDirectory, key: str,
                                                  name: str | None) -> None:
    found = await DirectoryNames(demo_directory).name_of(key)
    assert found == name or (name is not None and found is not None and found.startswith(name))
