"""Per-namespace throttles: invocations per minute, concurrent activations, trigger fires.

Sliding window over per-second counts of *accepted* requests: a request is accepted only while
the last 61 one-second buckets (the current one included) hold fewer than the limit. Those
buckets always cover the 60 seconds before any instant, so no 60-second window ever holds more
than the limit, whatever the arrival pattern; under a steady overload the accepted rate is at
least 60/61 of the limit (within 2%). Refused requests are not counted, so a client that keeps
knocking is not locked out longer. Each 429 says when a retry can succeed (``retry_after_s``).

Accepted counts reach the store with the activation journal's group commits (``drain_counts``)
and are loaded back at start-up (``load``), so a restart does not reset a namespace's window.
The operator may override the limits per namespace (``overrides``: see services/limits.py).

Scale-out (``shared``, set when ``nats.url`` is): several controllers share one namespace limit,
so each per-minute acceptance is taken in the store itself (``JournalStore.take_rate``: one
transaction, serialised per namespace and kind), never from a per-process view. Concurrent
activations stay counted per process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from stockade.domain import NamespaceLimits
from stockade.errors import ThrottledError
from stockade.store import JournalStore, RateCount

__all__ = ["WINDOW_S", "RateLedger", "Throttle"]

# Buckets that make up the window: the current second and the 60 before it.
WINDOW_S = 61


@dataclass(slots=True)
class _Window:
    """Accepted requests per second over the last ``WINDOW_S`` seconds, with their total."""

    buckets: deque[list[int]] = field(default_factory=deque)  # [second, count], oldest first
    total: int = 0

    def _expire(self, now_s: int) -> None:
        while self.buckets and self.buckets[0][0] <= now_s - WINDOW_S:
            self.total -= self.buckets.popleft()[1]

    def count(self, now_s: int) -> int:
        self._expire(now_s)
        return self.total

    def add(self, second: int, n: int = 1) -> None:
        if self.buckets and self.buckets[-1][0] == second:
            self.buckets[-1][1] += n
        elif not self.buckets or self.buckets[-1][0] < second:
            self.buckets.append([second, n])
        else:  # loaded out of order (start-up): keep the buckets sorted
            for bucket in self.buckets:
                if bucket[0] == second:
                    bucket[1] += n
                    break
            else:
                self.buckets.append([second, n])
                self.buckets = deque(sorted(self.buckets))
        self.total += n

    def retry_after_s(self, now_s: int, allowed: int) -> int:
        """Seconds until enough of the oldest buckets expire for one more request to fit."""
        excess = self.total - allowed + 1
        for second, count in self.buckets:
            excess -= count
            if excess <= 0:
                return max(1, second + WINDOW_S - now_s)
        return 1


class RateLedger(Protocol):
    """Where per-minute acceptances are taken when several processes share the limits."""

    async def take_rate(self, namespace: str, kind: str, second: int, allowed: int) -> bool:
        """Count one request unless the window is full."""
        ...


@dataclass(slots=True)
class Throttle:
    """Counts per namespace; ``now_ms`` is the injected clock."""

    now_ms: Callable[[], int]
    invocations_per_minute: int
    concurrent_invocations: int
    fires_per_minute: int
    # The namespace's own limits, if the operator set any (None: the defaults above for everyone).
    overrides: Callable[[str], NamespaceLimits | None] | None = None
    _windows: dict[tuple[str, str], _Window] = field(default_factory=dict)
    # Every request, refused ones included: only for OpenWhisk's "count" in the 429 message.
    _attempts: dict[tuple[str, str], _Window] = field(default_factory=dict)
    _dirty: dict[tuple[str, str, int], int] = field(default_factory=dict)
    _in_flight: dict[str, int] = field(default_factory=dict)
    # Scale-out: the store, where every controller takes its acceptances (None: this process alone).
    shared: RateLedger | None = None

    def _take(self, kind: str, namespace: str, allowed: int) -> None:
        now_s = self.now_ms() // 1000
        window = self._windows.setdefault((namespace, kind), _Window())
        attempts = self._attempts.setdefault((namespace, kind), _Window())
        attempts.count(now_s)
        attempts.add(now_s)
        if window.count(now_s) >= allowed:
            raise ThrottledError(
                f"Too many requests in the last minute (count: {max(attempts.total, allowed + 1)}, allowed: {allowed}).",
                retry_after_s=window.retry_after_s(now_s, allowed),
            )
        window.add(now_s)
        key = (namespace, kind, now_s)
        self._dirty[key] = self._dirty.get(key, 0) + 1

    def limits(self, namespace: str) -> tuple[int, int, int]:
        """Invocations per minute, concurrent invocations and fires per minute that apply to ``namespace``."""
        own = self.overrides(namespace) if self.overrides is not None else None
        if own is None:
            return self.invocations_per_minute, self.concurrent_invocations, self.fires_per_minute
        return (
            self.invocations_per_minute if own.invocations_per_minute is None else own.invocations_per_minute,
            self.concurrent_invocations if own.concurrent_invocations is None else own.concurrent_invocations,
            self.fires_per_minute if own.fires_per_minute is None else own.fires_per_minute,
        )

    def check_invoke(self, namespace: str) -> None:
        """Count one invocation; 429 when over the per-minute or concurrency limit."""
        per_minute, concurrent, _fires = self.limits(namespace)
        in_flight = self._in_flight.get(namespace, 0)
        if in_flight >= concurrent:
            raise ThrottledError(f"Too many concurrent requests in flight (count: {in_flight}, allowed: {concurrent}).")
        self._take("invoke", namespace, per_minute)

    async def admit_invoke(self, namespace: str) -> None:
        """``check_invoke``, with the per-minute window taken in the shared ledger when there is one."""
        if self.shared is None:
            self.check_invoke(namespace)
            return
        per_minute, concurrent, _fires = self.limits(namespace)
        in_flight = self._in_flight.get(namespace, 0)
        if in_flight >= concurrent:
            raise ThrottledError(f"Too many concurrent requests in flight (count: {in_flight}, allowed: {concurrent}).")
        await self._take_shared("invoke", namespace, per_minute)

    async def admit_fire(self, namespace: str) -> None:
        """``check_fire``, shared like ``admit_invoke``."""
        if self.shared is None:
            self.check_fire(namespace)
            return
        await self._take_shared("fire", namespace, self.limits(namespace)[2])

    async def _take_shared(self, kind: str, namespace: str, allowed: int) -> None:
        assert self.shared is not None
        now_s = self.now_ms() // 1000
        attempts = self._attempts.setdefault((namespace, kind), _Window())
        attempts.count(now_s)
        attempts.add(now_s)
        if not await self.shared.take_rate(namespace, kind, now_s, allowed):
            # The ledger does not say which second frees a slot; the oldest possible is a minute away
            # at worst, and a slot frees every 60/allowed seconds on average under a steady load.
            raise ThrottledError(
                f"Too many requests in the last minute (count: {max(attempts.total, allowed + 1)}, allowed: {allowed}).",
                retry_after_s=max(1, min(WINDOW_S, 60 // max(1, allowed))),
            )

    def check_fire(self, namespace: str) -> None:
        """Count one trigger fire; 429 when over the per-minute limit."""
        self._take("fire", namespace, self.limits(namespace)[2])

    def started(self, namespace: str) -> None:
        """An activation of ``namespace`` is now in flight."""
        self._in_flight[namespace] = self._in_flight.get(namespace, 0) + 1

    def finished(self, namespace: str) -> None:
        """An activation of ``namespace`` ended."""
        left = self._in_flight.get(namespace, 1) - 1
        if left <= 0:
            self._in_flight.pop(namespace, None)
        else:
            self._in_flight[namespace] = left

    def in_flight(self, namespace: str) -> int:
        """Activations of ``namespace`` in flight now."""
        return self._in_flight.get(namespace, 0)

    # Persistence (services/activations.py commits these with the journal).

    def drain_counts(self) -> list[RateCount]:
        """Counts accepted since the last drain."""
        dirty, self._dirty = self._dirty, {}
        return [RateCount(ns, kind, second, n) for (ns, kind, second), n in dirty.items()]

    def restore_counts(self, counts: Sequence[RateCount]) -> None:
        """Counts whose commit failed go back for the next one."""
        for c in counts:
            key = (c.namespace, c.kind, c.second)
            self._dirty[key] = self._dirty.get(key, 0) + c.accepted

    async def restore(self, store: JournalStore) -> None:
        """Load the windows the store holds (start-up)."""
        self.load(await store.load_rate_windows(self.now_ms() // 1000 - WINDOW_S))

    def load(self, counts: Sequence[RateCount]) -> None:
        """Windows as stored (start-up): requests accepted before a restart still count."""
        now_s = self.now_ms() // 1000
        for c in counts:
            if c.second > now_s - WINDOW_S:
                self._windows.setdefault((c.namespace, c.kind), _Window()).add(c.second, c.accepted)
                self._attempts.setdefault((c.namespace, c.kind), _Window()).add(c.second, c.accepted)
