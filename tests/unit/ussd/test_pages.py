"""Long screens as pages: the USSD channel pages every screen, long menus included, to its own size."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.crm.lookup import CrmLookup
from ivr.flow.loader import load_tree
from ivr.journey.memory import MemoryJourney
from ivr.live.reload import Reloader
from ivr.live.trees import TreeStore
from ivr.ussd import UssdConfig, UssdGateway
from ivr.ussd.config import Keys
from ivr.ussd.screens import PageKeys, Screen, paginate
from tests.clock import FakeClock
from tests.unit.ussd.conftest import ANNA, CountingActions, Phone, screen, serve

Client = TestClient[web.Request, web.Application]
KEYS = PageKeys("#", "More", "00", "Previous")
PAGED_TREE = Path(__file__).parent / "data" / "paged_tree.yaml"


@pytest.fixture
async def paged(config: UssdConfig, lookup: CrmLookup, actions: CountingActions, journey: MemoryJourney,
                clock: FakeClock) -> AsyncIterator[Client]:
    """A menu too long for one screen, with "98"/"99" as the page keys."""
    keyed = dataclasses.replace(config, keys=Keys(more="98", back="99"))
    trees = TreeStore(lambda: load_tree(PAGED_TREE))
    client = await serve(UssdGateway(keyed, trees, lookup, actions, journey, clock=clock))
    yield client
    await client.close()


async def test_a_long_menu_shows_the_configured_more_key(paged: Client) -> None:
    first = await Phone(paged, ANNA).dial("*111#")
    assert first.startswith("CON Add-ons\n1. Unlimited social networks")
    assert first.endswith("\n98. More")
    assert "#" not in first


async def pages_of_the_menu(anna: Phone) -> list[str]:
    pages = [await anna.dial("*111#")]
    while pages[-1].endswith("\n98. More") or "\n98. More\n" in pages[-1]:
        pages.append(await anna.send("98"))
    return pages


async def test_the_configured_more_key_pages_through_the_whole_menu(paged: Client) -> None:
    pages = await pages_of_the_menu(Phone(paged, ANNA))
    lines = [line for page in pages for line in screen(page).split("\n")]
    assert all(any(line.startswith(f"{key}. ") for line in lines) for key in "12345670")
    assert all(len(screen(page)) <= 182 for page in pages)
    assert pages[-1].endswith("0. Operator\n99. Previous")


async def test_the_configured_back_key_retraces_the_pages(paged: Client) -> None:
    anna = Phone(paged, ANNA)
    pages = await pages_of_the_menu(anna)
    back = [pages[-1]]
    for _ in pages[1:]:
        back.append(await anna.send("99"))
    assert back == pages[::-1]


async def test_an_option_on_a_later_page_is_chosen(paged: Client) -> None:
    anna = Phone(paged, ANNA)
    await pages_of_the_menu(anna)
    assert await anna.send("7") == "END You chose an add-on. Thank you!"


def test_a_screen_that_fits_is_one_page() -> None:
    assert paginate(Screen(("Hello.",), ("Menu", "1. A")), KEYS, 182) == ("Hello.\nMenu\n1. A",)


def test_a_paragraph_that_fits_a_page_is_not_cut() -> None:
    first, long = "x" * 40, ("word " * 30).strip()  # 40 and 149 characters: not both on one page
    pages = paginate(Screen((first, long), ("Menu", "1. A", "2. B")), KEYS, 182)
    assert pages[0] == first + "\n#. More"
    assert pages[1].startswith(long)


def test_the_last_page_of_an_ending_screen_has_no_back_line() -> None:
    pages = paginate(Screen(("x " * 100,), ("Goodbye.",)), KEYS, 182, final=True)
    assert len(pages) == 2 and not pages[-1].endswith("00. Previous")


_words = st.text(alphabet="abcdefghij ", min_size=1, max_size=300).map(str.strip).filter(bool)


@settings(max_examples=300, deadline=None)
@given(body=st.lists(_words, max_size=5), block=st.lists(_words, min_size=1, max_size=8),
       final=st.booleans(), limit=st.integers(min_value=60, max_value=200))
def test_every_page_fits_and_nothing_is_lost(body: list[str], block: list[str], final: bool, limit: int) -> None:
    pages = paginate(Screen(tuple(body), tuple(block)), KEYS, limit, final=final)
    assert all(len(page) <= limit for page in pages)
    nav = {KEYS.more_line, KEYS.back_line}
    shown = "".join(line for page in pages for line in page.split("\n") if line not in nav)
    assert shown.replace(" ", "") == "".join(body + block).replace(" ", "")


async def test_a_session_whose_menu_changed_under_it_is_asked_to_dial_again(
        tmp_path: Path, config: UssdConfig, lookup: CrmLookup, actions: CountingActions, journey: MemoryJourney,
        clock: FakeClock) -> None:
    tree_file = tmp_path / "tree.yaml"
    tree_file.write_text(PAGED_TREE.read_text())
    trees = TreeStore(lambda: load_tree(tree_file))
    client = await serve(UssdGateway(config, trees, lookup, actions, journey, clock=clock))
    try:
        anna = Phone(client, ANNA)
        await anna.dial("*111#")
        tree_file.write_text(PAGED_TREE.read_text().replace('"paged-1"', '"paged-2"'))
        assert Reloader(trees).reload().ok
        assert await anna.send("1") == "END Sorry, the menu has changed. Please dial *111# again."
    finally:
        await client.close()
