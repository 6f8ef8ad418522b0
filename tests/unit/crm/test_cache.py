"""TTL cache: entries expire, a cached None is a hit, the size is bounded (least recently used goes)."""

from __future__ import annotations

from ivr.crm.cache import Hit, TtlCache
from tests.unit.crm.fakes import FakeClock


def test_a_value_is_served_until_its_ttl_runs_out() -> None:
    clock = FakeClock()
    cache: TtlCache[str, int] = TtlCache(clock=clock)
    cache.put("a", 1, ttl_s=60)
    clock.advance(59.9)
    assert cache.get("a") == Hit(1)
    clock.advance(0.1)
    assert cache.get("a") is None


def test_a_cached_none_is_a_hit_not_a_miss() -> None:
    cache: TtlCache[str, int | None] = TtlCache(clock=FakeClock())
    cache.put("unknown", None, ttl_s=5)
    assert cache.get("unknown") == Hit(None)
    assert cache.get("never-seen") is None


def test_a_zero_ttl_stores_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(clock=FakeClock())
    cache.put("a", 1, ttl_s=0)
    assert cache.get("a") is None and len(cache) == 0


def test_the_least_recently_used_entry_is_dropped_when_full() -> None:
    cache: TtlCache[str, int] = TtlCache(max_entries=2, clock=FakeClock())
    cache.put("a", 1, ttl_s=60)
    cache.put("b", 2, ttl_s=60)
    assert cache.get("a") == Hit(1)  # a is now more recent than b
    cache.put("c", 3, ttl_s=60)
    assert len(cache) == 2
    assert cache.get("b") is None
    assert cache.get("a") == Hit(1) and cache.get("c") == Hit(3)


def test_forget_drops_one_entry() -> None:
    cache: TtlCache[str, int] = TtlCache(clock=FakeClock())
    cache.put("a", 1, ttl_s=60)
    cache.forget("a")
    cache.forget("not-there")
    assert cache.get("a") is None
