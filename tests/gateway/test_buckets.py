"""Token buckets: bursts up to capacity, refill at the rate, all-or-nothing across buckets, bounded memory."""

from __future__ import annotations

import pytest

from stockade.domain import RateLimit
from stockade.gateway import BucketTable
from stockade.gateway.buckets import retry_after_s


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_burst_then_refill():
    clock = Clock()
    table = BucketTable(clock)
    limit = RateLimit(3, 2.0)
    assert [table.take([("k", limit)]) for _ in range(3)] == [0, 0, 0]
    wait = table.take([("k", limit)])
    assert wait == pytest.approx(0.5)
    clock.now += 0.5
    assert table.take([("k", limit)]) == 0
    clock.now += 100
    assert [table.take([("k", limit)]) for _ in range(4)][-1] > 0  # refilled to capacity, no further


def test_all_or_nothing():
    """A refusal by one bucket takes no token from the others."""
    clock = Clock()
    table = BucketTable(clock)
    client, route = RateLimit(10, 1.0), RateLimit(1, 1.0)
    assert table.take([("c", client), ("r", route)]) == 0
    assert table.take([("c", client), ("r", route)]) > 0
    clock.now += 0.001
    assert table.take([("c", client)]) == 0  # the client bucket still had 9 tokens
    for _ in range(8):
        assert table.take([("c", client)]) == 0
    assert table.take([("c", client)]) > 0


def test_a_changed_limit_applies_at_once():
    clock = Clock()
    table = BucketTable(clock)
    assert table.take([("k", RateLimit(100, 1.0))]) == 0
    assert table.take([("k", RateLimit(1, 1.0))]) == 0  # 99 tokens left, capped to the new capacity of 1
    assert table.take([("k", RateLimit(1, 1.0))]) > 0


def test_table_stays_bounded():
    clock = Clock()
    table = BucketTable(clock, max_entries=100)
    limit = RateLimit(5, 1.0)
    for n in range(1000):
        table.take([(f"client-{n}", limit)])
        clock.now += 0.001
    assert table.statistics()["buckets"] <= 100


def test_retry_after_is_whole_seconds():
    assert retry_after_s(0.01) == 1
    assert retry_after_s(1.2) == 2
