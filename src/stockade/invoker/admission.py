"""Admission: which waiting run gets a sandbox next, under bounded starts and a warm hand-over.

Bookkeeping only (the invoker starts, kills and runs). Level-triggered: every change of state
(a sandbox released, destroyed or reaped, a start finished, a waiter's warm wait over) calls
``pump``, which walks the waiting runs in arrival order and grants each whatever is free *now*
(an idle sandbox of its key, or a start slot with a pool slot). A grant is a resource already
taken for the waiter, so no wake-up can be lost: a waiter that does not use it gives it back
(``Invoker._give_back``), which pumps again.

Policy (OpenWhisk's container pool buffers runs the same way):
- at most ``max_starts`` sandboxes are being started at once; more runs queue;
- while another namespace's run waits, one namespace holds at most ``max_starts - 1`` of them,
  so a tenant flooding cold starts delays another's by one start at most, not by its whole queue;
- a run of a key with busy sandboxes may wait for one of them (``warm_until``) instead of
  starting, when a warm run is expected sooner than a cold start; a released sandbox goes
  straight to the longest waiter of its key;
- while the pool is full and another namespace's run waits, a namespace holding at least
  ``max_sandboxes - 1`` sandboxes takes no more (no hand-over, no idle one, no start): its released
  sandbox goes to the pool, where the other namespace's start may evict it. Otherwise one tenant
  keeping a backlog of one action would pass each released sandbox to itself and hold the whole
  pool until its backlog drained.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from typing import Generic, TypeVar, final

from stockade.invoker.pool import PoolKey, WarmPool

__all__ = ["Admission", "Grant", "Waiter"]

T = TypeVar("T")
K = TypeVar("K")
# Weight of the newest sample in the run-time and cold-start estimates (exponential average).
_EWMA = 0.2
# Waiters per busy sandbox that may wait for it on the estimates alone.
_QUEUE_PER_BUSY = 4


@final
@dataclass(frozen=True, slots=True)
class Grant(Generic[T]):
    """An idle sandbox of the key (now busy), or, with ``session`` None, a start slot and a pool
    slot for a new sandbox; the ``evicted`` idle sandboxes passed their pool slot and must be killed."""

    session: T | None
    evicted: tuple[T, ...] = ()


@final
@dataclass(eq=False, slots=True)
class Waiter(Generic[T]):
    """One run waiting for a grant."""

    key: PoolKey
    warm_until: float  # loop time; before it the run waits for a busy sandbox of its key rather than start
    future: asyncio.Future[Grant[T]] = field(repr=False)


@final
class Admission(Generic[T]):
    """Waiting runs in arrival order, the start slots and the busy sandboxes per key.

    Invariants: ``starting`` <= ``max_starts``; ``busy[key]`` counts the sandboxes of ``key`` that
    are running or being started (granted, not yet released or destroyed).
    """

    def __init__(self, pool: WarmPool[T], *, max_starts: int, warm_wait_s: float) -> None:
        if max_starts < 1:
            raise ValueError("max_starts must be at least 1")
        self._pool = pool
        self.max_starts = max_starts
        self.warm_wait_s = warm_wait_s
        self.starting = 0
        self._starting_ns: collections.Counter[str] = collections.Counter()
        self._waiting_ns: collections.Counter[str] = collections.Counter()
        self.busy: collections.Counter[PoolKey] = collections.Counter()
        self._queue: collections.deque[Waiter[T]] = collections.deque()
        self._by_key: dict[PoolKey, collections.deque[Waiter[T]]] = {}
        self._closed = False
        # Estimates in seconds: a warm run per key, a cold start (start + init) per runtime kind.
        self._run_s: dict[PoolKey, float] = {}
        self._cold_s: dict[str, float] = {}

    @property
    def waiting(self) -> int:
        """Runs waiting for a grant."""
        return sum(1 for waiter in self._queue if not waiter.future.done())

    def waiting_for(self, key: PoolKey) -> int:
        """Runs of ``key`` waiting for a grant."""
        waiters = self._by_key.get(key)
        return sum(1 for waiter in waiters if not waiter.future.done()) if waiters else 0

    # -- taking ----------------------------------------------------------------------------------

    def try_now(self, key: PoolKey, *, prefer_warm: bool) -> Grant[T] | None:
        """A grant at once when something is free for ``key``; None means: wait (``enqueue``)."""
        if self._closed:
            raise RuntimeError("invoker is closed")
        if self._over_share(key.namespace):
            return None
        session = self._pool.take(key)  # counts the pool's hit or miss once per run
        if session is not None:
            self.busy[key] += 1
            return Grant(session)
        loop_now = asyncio.get_running_loop().time()
        return self._start_slot(key, loop_now + self.warm_wait_s if prefer_warm else loop_now, loop_now)

    def enqueue(self, key: PoolKey, *, prefer_warm: bool) -> Waiter[T]:
        """Join the line; await ``waiter.future``. On cancellation call ``abandon``."""
        loop = asyncio.get_running_loop()
        warm_until = loop.time() + self.warm_wait_s if prefer_warm else 0.0
        waiter: Waiter[T] = Waiter(key, warm_until, loop.create_future())
        namespace = key.namespace
        self._waiting_ns[namespace] += 1
        waiter.future.add_done_callback(lambda _: self._not_waiting(namespace))
        self._queue.append(waiter)
        self._by_key.setdefault(key, collections.deque()).append(waiter)
        if prefer_warm:
            loop.call_at(warm_until, self.pump)
        return waiter

    def abandon(self, waiter: Waiter[T]) -> Grant[T] | None:
        """A waiter gave up (cancelled): the grant it had already received, to be given back, or None."""
        if waiter.future.done() and not waiter.future.cancelled():
            return waiter.future.result()
        waiter.future.cancel()
        return None

    def pump(self) -> None:
        """Grant every waiting run what is free for it now, in arrival order."""
        if not self._queue:
            return
        loop_now = asyncio.get_running_loop().time()
        kept: collections.deque[Waiter[T]] = collections.deque()
        while self._queue:
            waiter = self._queue.popleft()
            if waiter.future.done():
                self._forget(waiter)
                continue
            if self._pool_exhausted():
                kept.append(waiter)
                kept.extend(self._queue)
                self._queue.clear()
                break
            grant = self._try(waiter.key, waiter.warm_until, loop_now)
            if grant is None:
                kept.append(waiter)
                continue
            waiter.future.set_result(grant)
            self._forget(waiter)
        self._queue = kept

    # -- giving back -----------------------------------------------------------------------------

    def hand_over(self, key: PoolKey, session: T) -> bool:
        """Give a released sandbox of ``key`` to its longest waiter (it stays busy); False if none,
        or if its namespace holds its share of a full pool while another namespace waits."""
        if self._over_share(key.namespace):
            return False
        waiters = self._by_key.get(key)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_result(Grant(session))
                if not waiters:
                    del self._by_key[key]
                return True
        self._by_key.pop(key, None)
        return False

    def not_busy(self, key: PoolKey) -> None:
        """A granted sandbox of ``key`` is idle again or gone (or its start failed)."""
        _decrement(self.busy, key)

    # -- estimates -------------------------------------------------------------------------------

    def prefers_warm(self, key: PoolKey, kind: str) -> bool:
        """A busy sandbox of ``key`` is expected free before a new one of ``kind`` would be ready.

        At most ``_QUEUE_PER_BUSY`` waiters per busy sandbox wait on the estimate alone, so a
        steady concurrency far above the pool's size still grows the pool; a burst of short runs
        does not start dozens of sandboxes that would compete with the runs for the CPU.
        """
        busy = self.busy[key]
        cold_s = self._cold_s.get(kind)
        run_s = self._run_s.get(key)
        if not busy or cold_s is None or run_s is None:
            return False
        queued = self.waiting_for(key)
        return queued < busy * _QUEUE_PER_BUSY and run_s * (queued // busy + 1) < cold_s

    def learn(self, key: PoolKey, kind: str, run_s: float, cold_s: float | None) -> None:
        """Fold one successful run (and its cold start, if any) into the estimates."""
        previous = self._run_s.get(key)
        self._run_s[key] = run_s if previous is None else previous + _EWMA * (run_s - previous)
        if cold_s is not None:
            known = self._cold_s.get(kind)
            self._cold_s[kind] = cold_s if known is None else known + _EWMA * (cold_s - known)

    def forget_key(self, key: PoolKey) -> None:
        """Drop the run-time estimate of a key with no sandbox left (bounded memory)."""
        if not self.busy[key] and not self._pool.has_idle(key) and key not in self._by_key:
            self._run_s.pop(key, None)

    def start_done(self, key: PoolKey) -> None:
        """A start granted for ``key`` by ``try_now``/``pump`` ended (either way): its slot is free."""
        self.starting -= 1
        _decrement(self._starting_ns, key.namespace)
        self.pump()

    def close(self) -> None:
        """Fail every waiting run: the invoker is closing."""
        self._closed = True
        for waiter in self._queue:
            if not waiter.future.done():
                waiter.future.set_exception(RuntimeError("invoker is closed"))
        self._queue.clear()
        self._by_key.clear()

    # -- internals -------------------------------------------------------------------------------

    def _try(self, key: PoolKey, warm_until: float, loop_now: float) -> Grant[T] | None:
        if self._over_share(key.namespace):
            return None
        if self._pool.has_idle(key):
            session = self._pool.take(key)
            if session is not None:
                self.busy[key] += 1
                return Grant(session)
        return self._start_slot(key, warm_until, loop_now)

    def _start_slot(self, key: PoolKey, warm_until: float, loop_now: float) -> Grant[T] | None:
        if self.starting >= self.max_starts:
            return None
        namespace = key.namespace
        if self._starting_ns[namespace] >= max(1, self.max_starts - 1) and self._others_wait(namespace):
            return None  # the last slot is kept for another namespace's waiting run
        if self.busy[key] and loop_now < warm_until:
            return None  # a busy sandbox of this key is expected free before a new one would be ready
        evicted = self._pool.reserve()
        if evicted is None:
            return None
        self.starting += 1
        self._starting_ns[namespace] += 1
        self.busy[key] += 1
        return Grant(None, tuple(evicted))

    def _others_wait(self, namespace: str) -> bool:
        return any(count > 0 and other != namespace for other, count in self._waiting_ns.items())

    def _over_share(self, namespace: str) -> bool:
        """The pool is full, ``namespace`` holds at least all but one of its sandboxes, and another waits."""
        pool = self._pool
        if pool.live < pool.max_sandboxes or not self._others_wait(namespace):
            return False
        held = sum(count for key, count in self.busy.items() if key.namespace == namespace)
        return held >= max(1, pool.max_sandboxes - 1)

    def _not_waiting(self, namespace: str) -> None:
        _decrement(self._waiting_ns, namespace)
        if namespace not in self._waiting_ns and not self._closed and self._pool.live >= self._pool.max_sandboxes:
            # Another namespace held back for this one (``_over_share``) may take its turn now.
            self.pump()

    def _pool_exhausted(self) -> bool:
        """Nothing can be granted to anyone: no idle sandbox and no start slot."""
        return self._pool.idle == 0 and (
            self.starting >= self.max_starts or self._pool.live >= self._pool.max_sandboxes
        )

    def _forget(self, waiter: Waiter[T]) -> None:
        waiters = self._by_key.get(waiter.key)
        if waiters is None:
            return
        while waiters and waiters[0].future.done():
            waiters.popleft()
        if not waiters:
            del self._by_key[waiter.key]


def _decrement(counter: collections.Counter[K], key: K) -> None:
    """One less of ``key``; a key that reaches zero leaves the counter (bounded memory)."""
    left = counter[key] - 1
    if left > 0:
        counter[key] = left
    else:
        counter.pop(key, None)
