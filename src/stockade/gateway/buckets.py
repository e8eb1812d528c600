"""Token buckets, in memory and per process, keyed by route (and client).

Invariant: a bucket that has refilled completely is indistinguishable from a new one, so full
buckets may be dropped at any time. The table is bounded: past ``max_entries`` it drops the full
buckets, then the least recently used ones (a client evicted that way starts over with a full
bucket; the per-route bucket still bounds the total). In scale-out each process keeps its own
buckets, so a client gets up to one burst per process; quotas are the cross-process limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from stockade.domain import RateLimit

__all__ = ["BucketTable"]

DEFAULT_MAX_ENTRIES: Final = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_s: float
    limit: RateLimit

    def refill(self, now_s: float, limit: RateLimit) -> None:
        if limit != self.limit:
            # The route's limit changed: keep what was used, within the new capacity.
            self.tokens = min(self.tokens, float(limit.capacity))
            self.limit = limit
        elapsed = max(0.0, now_s - self.updated_s)
        self.tokens = min(float(limit.capacity), self.tokens + elapsed * limit.refill_per_s)
        self.updated_s = now_s

    def is_full(self, now_s: float) -> bool:
        return self.tokens + max(0.0, now_s - self.updated_s) * self.limit.refill_per_s >= self.limit.capacity


class BucketTable:
    """Buckets by key; ``monotonic`` is the injected clock (seconds)."""

    def __init__(self, monotonic: Callable[[], float], *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._monotonic = monotonic
        self._max_entries = max_entries
        self._buckets: dict[str, _Bucket] = {}

    def take(self, demands: Sequence[tuple[str, RateLimit]]) -> float:
        """Take one token from every bucket, or from none: 0 when taken, else seconds until possible."""
        now = self._monotonic()
        buckets = []
        wait_s = 0.0
        for key, limit in demands:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = _Bucket(float(limit.capacity), now, limit)
                self._insert(key, bucket, now)
            bucket.refill(now, limit)
            if bucket.tokens < 1.0:
                wait_s = max(wait_s, (1.0 - bucket.tokens) / limit.refill_per_s)
            buckets.append(bucket)
        if wait_s > 0:
            return wait_s
        for bucket in buckets:
            bucket.tokens -= 1.0
        return 0.0

    def _insert(self, key: str, bucket: _Bucket, now_s: float) -> None:
        if len(self._buckets) >= self._max_entries:
            self._shrink(now_s)
        self._buckets[key] = bucket

    def _shrink(self, now_s: float) -> None:
        kept = {k: b for k, b in self._buckets.items() if not b.is_full(now_s)}
        if len(kept) >= self._max_entries * 3 // 4:
            newest = sorted(kept.items(), key=lambda item: item[1].updated_s)[-(self._max_entries // 2) :]
            kept = dict(newest)
        self._buckets = kept

    def statistics(self) -> dict[str, int]:
        """How many buckets are held."""
        return {"buckets": len(self._buckets)}


def retry_after_s(wait_s: float) -> int:
    """Whole seconds for a Retry-After header (at least 1)."""
    return max(1, math.ceil(wait_s))
