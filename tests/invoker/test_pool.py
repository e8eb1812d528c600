"""The warm pool: reuse per key only, LRU eviction at the cap, TTL reaping, recycling."""

from __future__ import annotations

import pytest

from stockade.invoker.pool import PoolKey, WarmPool
from stockade.testing import FrozenClock

A = PoolKey("guest", "/guest/a", "0.0.1")
B = PoolKey("guest", "/guest/b", "0.0.1")
A_OTHER_NS = PoolKey("other", "/guest/a", "0.0.1")
A_V2 = PoolKey("guest", "/guest/a", "0.0.2")
A_RECREATED = PoolKey("guest", "/guest/a", "0.0.1", revision=5)


@pytest.fixture
def clock():
    return FrozenClock()


def make_pool(clock, *, max_sandboxes=4, ttl_ms=1000, max_runs=100):
    return WarmPool(clock=clock, max_sandboxes=max_sandboxes, idle_ttl_ms=ttl_ms, max_runs=max_runs)


def test_idle_sandbox_is_reused_only_for_the_same_key(clock):
    pool = make_pool(clock)
    assert pool.reserve() == []
    assert pool.put(A, "sa", runs=1)
    for key in (B, A_OTHER_NS, A_V2, A_RECREATED):
        assert pool.take(key) is None
    assert pool.take(A) == "sa"
    assert pool.take(A) is None


def test_most_recently_used_is_taken_first(clock):
    pool = make_pool(clock)
    pool.reserve()
    pool.reserve()
    pool.put(A, "old", 1)
    clock.advance(10)
    pool.put(A, "new", 1)
    assert pool.take(A) == "new"
    assert pool.take(A) == "old"


def test_reserve_evicts_least_recently_used_idle_at_the_cap(clock):
    pool = make_pool(clock, max_sandboxes=2)
    assert pool.reserve() == []
    assert pool.reserve() == []
    pool.put(A, "sa", 1)
    clock.advance(5)
    pool.put(B, "sb", 1)
    assert pool.reserve() == ["sa"]
    stats = pool.statistics()
    assert (stats.live, stats.idle, stats.busy, stats.evictions) == (2, 1, 1, 1)
    assert pool.take(A) is None
    assert pool.take(B) == "sb"


def test_reserve_returns_none_when_everything_is_busy(clock):
    pool = make_pool(clock, max_sandboxes=1)
    assert pool.reserve() == []
    assert pool.reserve() is None
    pool.discard()
    assert pool.reserve() == []


def test_idle_sandboxes_past_the_ttl_are_reaped(clock):
    pool = make_pool(clock, ttl_ms=1000)
    for _ in range(3):
        pool.reserve()
    pool.put(A, "a1", 1)
    clock.advance(600)
    pool.put(B, "b1", 1)
    clock.advance(399)
    assert pool.reap() == []
    clock.advance(1)
    assert pool.reap() == ["a1"]
    clock.advance(600)
    assert pool.reap() == ["b1"]
    stats = pool.statistics()
    assert (stats.live, stats.idle, stats.reaped) == (1, 0, 2)


def test_sandbox_is_recycled_after_max_runs(clock):
    pool = make_pool(clock, max_runs=3)
    pool.reserve()
    assert pool.put(A, "sa", runs=2) is True
    assert pool.take(A) == "sa"
    assert pool.put(A, "sa", runs=3) is False
    assert pool.take(A) is None
    assert pool.statistics().recycled == 1


def test_drain_and_statistics(clock):
    pool = make_pool(clock)
    for _ in range(3):
        pool.reserve()
    pool.put(A, "a", 1)
    pool.put(B, "b", 1)
    assert pool.take(A) == "a"
    stats = pool.statistics()
    assert (stats.live, stats.idle, stats.busy, stats.keys, stats.hits, stats.misses) == (3, 1, 2, 1, 1, 0)
    assert pool.drain() == ["b"]
    assert pool.live == 2


def test_discard_without_live_sandbox_is_a_bug(clock):
    with pytest.raises(RuntimeError):
        make_pool(clock).discard()
