"""A reload takes the menus and the routing rules together: all valid and swapped, or nothing changes."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from ivr.flow.loader import load_tree
from ivr.flow.model import Tree
from ivr.live.reload import Reloader
from ivr.live.routing import RoutingStore
from ivr.live.trees import TreeStore
from ivr.routing.rules import load_routing
from ivr.serve.watch import FileWatch

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "config" / "menus", tmp_path / "menus")
    shutil.copy(REPO / "config" / "numbers.yaml", tmp_path / "numbers.yaml")
    shutil.copy(REPO / "config" / "routing.yaml", tmp_path / "routing.yaml")
    return tmp_path


@pytest.fixture
def reloader(files: Path) -> Reloader:
    trees = TreeStore(lambda: load_tree(files / "menus", numbers=files / "numbers.yaml"))
    return Reloader(trees, RoutingStore(lambda: load_routing(files / "routing.yaml")))


def test_an_edited_routing_file_is_live_after_a_reload(reloader: Reloader, files: Path) -> None:
    assert reloader.routing is not None
    before = reloader.routing.current()
    (files / "routing.yaml").write_text((files / "routing.yaml").read_text() + "\n# edited\n")
    result = reloader.reload("test")
    assert result.ok and reloader.routing.current() is not before and reloader.routing.generation == 2


def test_an_invalid_routing_file_is_refused_with_its_file_and_line_and_nothing_changes(
        reloader: Reloader, files: Path) -> None:
    assert reloader.routing is not None
    tree, rules = reloader.trees.current(), reloader.routing.current()
    (files / "routing.yaml").write_text("rules:\n  - name: broken\n    when: 'customer.segment =='\n")
    result = reloader.reload("test")
    assert not result.ok and result.problems
    assert all(p.path.endswith("routing.yaml") and p.line >= 1 for p in result.problems)
    assert reloader.trees.current() is tree and reloader.routing.current() is rules


def test_an_invalid_menu_keeps_the_edited_routing_out_too(reloader: Reloader, files: Path) -> None:
    assert reloader.routing is not None
    rules = reloader.routing.current()
    (files / "routing.yaml").write_text((files / "routing.yaml").read_text() + "\n# edited\n")
    (files / "menus" / "broken.yaml").write_text("nodes:\n  main:\n    type: menu\n")
    assert not reloader.reload("test").ok
    assert reloader.routing.current() is rules


async def test_the_files_are_parsed_off_the_event_loop(reloader: Reloader, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    load = reloader.trees.load

    def recording_load() -> Tree:
        threads.append(threading.current_thread().name)
        return load()

    monkeypatch.setattr(reloader.trees, "load", recording_load)
    assert (await reloader.reload_async("test")).ok
    assert threads and threads[0] != threading.main_thread().name


def test_a_file_watch_reports_one_change_once(files: Path) -> None:
    watch = FileWatch([files / "menus", files / "routing.yaml"])
    assert not watch.changed()
    edited = files / "routing.yaml"
    edited.write_text("# changed\n")
    later = edited.stat().st_mtime + 10  # a clock tick the filesystem cannot round away
    os.utime(edited, (later, later))
    assert watch.changed() and not watch.changed()
