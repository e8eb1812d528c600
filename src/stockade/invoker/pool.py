"""Warm pool: idle sandboxes per (namespace, action, version) and the global count of live ones.

Pure bookkeeping with an injected clock and no I/O: the invoker kills what the pool hands back
(evicted, reaped, recycled) and starts what it reserves.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar, final

from stockade.domain import Clock

__all__ = ["PoolKey", "PoolStatistics", "WarmPool"]

T = TypeVar("T")


@final
@dataclass(frozen=True, slots=True)
class PoolKey:
    """Which sandboxes may serve an activation: never shared across any of these fields."""

    namespace: str  # the invoking namespace
    action: str  # fully qualified name, /ns[/pkg]/name
    version: str
    # The action's `updated` time: tells apart a deleted and re-created action with the same version.
    revision: int = 0


@final
@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """A snapshot of the pool's counters."""

    max_sandboxes: int
    live: int  # idle + busy (busy includes sandboxes being started)
    idle: int
    busy: int
    keys: int  # keys with at least one idle sandbox
    hits: int
    misses: int
    evictions: int
    reaped: int
    recycled: int


@dataclass(slots=True, eq=False)
class _Idle(Generic[T]):
    item: T
    key: PoolKey
    since_ms: int


@final
class WarmPool(Generic[T]):
    """Idle sandboxes by key, LRU across keys; counts every live sandbox against ``max_sandboxes``.

    Invariant: ``live`` = idle + busy <= ``max_sandboxes``; a slot is taken by ``reserve`` and
    given back by ``discard`` (or kept by ``put`` as idle).
    """

    def __init__(self, *, clock: Clock, max_sandboxes: int, idle_ttl_ms: int, max_runs: int) -> None:
        if max_sandboxes < 1:
            raise ValueError("max_sandboxes must be at least 1")
        self._clock = clock
        self.max_sandboxes = max_sandboxes
        self.idle_ttl_ms = idle_ttl_ms
        self.max_runs = max_runs
        self._by_key: dict[PoolKey, list[_Idle[T]]] = {}
        # Invariant: in the order sandboxes became idle, so the first entry is least recently used.
        self._lru: OrderedDict[int, _Idle[T]] = OrderedDict()
        self._live = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._reaped = 0
        self._recycled = 0

    @property
    def live(self) -> int:
        """Sandboxes counted against the cap."""
        return self._live

    @property
    def idle(self) -> int:
        """Idle sandboxes (of every key)."""
        return len(self._lru)

    def has_idle(self, key: PoolKey) -> bool:
        """An idle sandbox of ``key`` is there to ``take`` (counts nothing)."""
        return key in self._by_key

    def take(self, key: PoolKey) -> T | None:
        """The most recently used idle sandbox of ``key`` (now busy), or None."""
        entries = self._by_key.get(key)
        if not entries:
            self._misses += 1
            return None
        entry = entries.pop()
        if not entries:
            del self._by_key[key]
        del self._lru[id(entry)]
        self._hits += 1
        return entry.item

    def reserve(self) -> list[T] | None:
        """Take a slot for a new sandbox: [] if free, [evicted idle sandbox] at the cap, None if full.

        The caller kills what is returned before starting the new sandbox.
        """
        if self._live < self.max_sandboxes:
            self._live += 1
            return []
        if not self._lru:
            return None
        _, victim = self._lru.popitem(last=False)
        self._remove_from_key(victim)
        self._evictions += 1
        # The victim's slot passes to the caller, so `live` does not change.
        return [victim.item]

    def discard(self) -> None:
        """Give back the slot of a busy (or reserved) sandbox that is gone."""
        if self._live <= 0:
            raise RuntimeError("discard without a live sandbox")
        self._live -= 1

    def put(self, key: PoolKey, item: T, runs: int) -> bool:
        """Return a busy sandbox as idle; False when it has served ``max_runs`` and must be recycled.

        On False the caller destroys the sandbox and calls ``discard``.
        """
        if runs >= self.max_runs:
            self._recycled += 1
            return False
        entry = _Idle(item, key, self._clock.now_ms())
        self._by_key.setdefault(key, []).append(entry)
        self._lru[id(entry)] = entry
        return True

    def reap(self) -> list[T]:
        """Remove idle sandboxes older than the TTL; the caller kills them. Their slots are freed."""
        cutoff = self._clock.now_ms() - self.idle_ttl_ms
        expired: list[T] = []
        while self._lru:
            entry = next(iter(self._lru.values()))
            if entry.since_ms > cutoff:
                break
            self._lru.popitem(last=False)
            self._remove_from_key(entry)
            expired.append(entry.item)
        self._live -= len(expired)
        self._reaped += len(expired)
        return expired

    def drain(self) -> list[T]:
        """Remove every idle sandbox (shutdown); their slots are freed."""
        items = [entry.item for entry in self._lru.values()]
        self._lru.clear()
        self._by_key.clear()
        self._live -= len(items)
        return items

    def _remove_from_key(self, entry: _Idle[T]) -> None:
        entries = self._by_key[entry.key]
        entries.remove(entry)
        if not entries:
            del self._by_key[entry.key]

    def statistics(self) -> PoolStatistics:
        """Counters and sizes now."""
        idle = len(self._lru)
        return PoolStatistics(
            max_sandboxes=self.max_sandboxes,
            live=self._live,
            idle=idle,
            busy=self._live - idle,
            keys=len(self._by_key),
            hits=self._hits,
            misses=self._misses,
            evictions=self._evictions,
            reaped=self._reaped,
            recycled=self._recycled,
        )
