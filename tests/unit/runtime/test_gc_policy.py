"""A serving process collects its young generation less often and never walks its startup objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ivr.runtime.gc_policy import GEN0_THRESHOLD, tune_for_serving


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_tuning_raises_the_young_generation_threshold_and_keeps_the_older_ones() -> None:
    _, older, oldest = gc.get_threshold()

    tune_for_serving()

    assert gc.get_threshold() == (GEN0_THRESHOLD, older, oldest)


@pytest.mark.usefixtures("restored_gc")
def test_tuning_freezes_what_the_process_built() -> None:
    built = [object() for _ in range(10)]

    tune_for_serving()

    assert gc.get_freeze_count() >= len(built)
