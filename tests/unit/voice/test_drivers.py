"""Which driver answers a number, as the dialplan reads it from the AstDB."""

from __future__ import annotations

from pathlib import Path

from ivr.flow import load_tree
from ivr.voice.drivers import FAMILY, publish_drivers, wanted


class FakeAstDb:
    def __init__(self, rows: dict[str, str]) -> None:
        self.rows = dict(rows)
        self.log: list[tuple[str, str]] = []

    async def db_tree(self, family: str) -> dict[str, str]:
        assert family == FAMILY
        return dict(self.rows)

    async def db_put(self, family: str, key: str, value: str) -> None:
        self.rows[key] = value
        self.log.append(("put", key))

    async def db_del(self, family: str, key: str) -> None:
        self.rows.pop(key, None)
        self.log.append(("del", key))


def test_every_voice_number_gets_a_driver_and_ussd_codes_none(tmp_path: Path):
    (tmp_path / "t.yaml").write_text('version: "1"\nlanguages: [en]\nentry: main\nnodes:\n  main: {type: hangup}\n')
    (tmp_path / "numbers.yaml").write_text('numbers:\n  "100": main\n  "101": {entry: main, driver: ari}\n'
                                           '  "*100#": main\n')
    tree = load_tree(tmp_path / "t.yaml", numbers=tmp_path / "numbers.yaml")

    assert wanted(tree) == {"100": "agi", "101": "ari"}


async def test_publishing_writes_changes_first_and_deletes_stale_numbers_last():
    db = FakeAstDb({"100": "agi", "101": "agi", "555": "ari"})

    await publish_drivers(db, {"100": "agi", "101": "ari"})

    assert db.rows == {"100": "agi", "101": "ari"}
    assert db.log == [("put", "101"), ("del", "555")]  # unchanged 100 is not rewritten
