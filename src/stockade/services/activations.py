"""Activation records: journalled before they are acknowledged, group-committed, read back.

Invariants (docs/design/durability.md):
- An activation is journalled (pending, with its sealed request) before its 202, its trigger's
  acknowledgement or its blocking run; ``accept`` returns only once that row is committed.
- Its terminal record replaces the pending row in one transaction, and a blocking caller's
  response waits for that commit (``finish``). The first terminal record for an id wins.
- One writer task commits everything queued in one transaction (group commit), so concurrent
  activations share commits instead of queueing behind each other's.
- A record is readable from the moment it is finished (``_pending``) until committed; when the
  store refuses writes (full disk) it stays there and is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import structlog

from stockade.domain import Activation, parse_activation_id
from stockade.errors import NotFoundError, PlatformError, StoreError
from stockade.store import ActivationQuery, JournalStore, PendingActivation, RateCount, Store

__all__ = ["ActivationRecorder", "ActivationService", "RateJournal"]

log = structlog.get_logger("stockade.activations")

# How often the throttle windows older than two minutes are pruned from the store.
_PRUNE_EVERY_MS = 60_000


class RateJournal(Protocol):
    """The throttle's accepted counts that must reach the store (see services/throttle.py)."""

    def drain_counts(self) -> list[RateCount]:
        """Counts accepted since the last drain."""

    def restore_counts(self, counts: Sequence[RateCount]) -> None:
        """Counts whose commit failed, to be written with the next one."""


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class ActivationRecorder:
    """The activation journal's single writer: accepts and terminal records, group-committed."""

    def __init__(
        self,
        store: JournalStore,
        *,
        batch_size: int = 256,
        flush_interval_ms: int = 20,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self._store = store
        self._batch_size = batch_size
        self._interval_s = flush_interval_ms / 1000
        self._now_ms = now_ms
        self._pending: dict[str, Activation] = {}
        self._accepts: list[tuple[PendingActivation, asyncio.Future[None]]] = []
        self._waiters: dict[str, list[asyncio.Future[bool]]] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._last_prune_ms = 0
        self.rates: RateJournal | None = None
        self._inline: set[asyncio.Task[bool]] = set()
        self.commits = 0  # transactions committed (statistics)

    def start(self) -> None:
        """Start the writer."""
        self._task = asyncio.create_task(self._run(), name="activation-recorder")

    async def accept(self, pending: PendingActivation) -> None:
        """Journal an accepted activation; returns once committed (StoreError if it cannot be)."""
        await self.accept_nowait(pending)

    def accept_nowait(self, pending: PendingActivation) -> asyncio.Future[None]:
        """Queue a journal row; the future resolves once it is committed (or made moot by the
        activation's terminal record, when that arrives before the row was written)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        # A blocking invoke may never await it: its failure is reported by finish() instead.
        future.add_done_callback(_retrieve)
        self._accepts.append((pending, future))
        if self._task is not None and not self._task.done():
            self._wake.set()
        else:  # no writer (not started, or closing): commit from a task of its own
            task = loop.create_task(self.flush())
            self._inline.add(task)
            task.add_done_callback(self._inline.discard)
        return future

    def record(self, activation: Activation) -> None:
        """Queue a terminal record without waiting for its commit."""
        self._pending[activation.activation_id] = activation
        self._wake.set()

    async def finish(self, activation: Activation) -> bool:
        """Queue a terminal record and wait for its commit: True once durable, False when the store
        refused it (it stays readable and is retried)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._drop_queued_accept(activation.activation_id)
        self._pending[activation.activation_id] = activation
        self._waiters.setdefault(activation.activation_id, []).append(future)
        await self._kick()
        return await future

    async def pending_journal(self, limit: int = 1000, after: tuple[int, str] | None = None) -> list[PendingActivation]:
        """Journalled activations without a terminal record, oldest first (recovery at start-up)."""
        return await self._store.list_pending_activations(limit, after)

    async def count_attempt(self, activation_id: str, attempts: int) -> None:
        """Store a pending activation's attempt count before it runs again."""
        await self._store.set_pending_attempts(activation_id, attempts)

    def _drop_queued_accept(self, activation_id: str) -> None:
        """A terminal record makes a not-yet-written journal row moot: it is not written at all."""
        for index, (pending, future) in enumerate(self._accepts):
            if pending.activation_id == activation_id:
                del self._accepts[index]
                if not future.done():
                    future.set_result(None)
                return

    def pending(self, activation_id: str) -> Activation | None:
        """A record not yet committed."""
        return self._pending.get(activation_id)

    async def _kick(self) -> None:
        if self._task is None or self._task.done():
            await self.flush()  # no writer (not started, or closing): commit inline
        else:
            self._wake.set()

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval_s)
            self._wake.clear()
            if not await self.flush():
                await asyncio.sleep(0.5)

    async def flush(self) -> bool:
        """Commit everything queued in one transaction; False when the store refused it."""
        async with self._lock:
            accepts, self._accepts = self._accepts, []
            batch = list(self._pending.values())[: self._batch_size * 4]
            rates = self.rates.drain_counts() if self.rates is not None else []
            if not accepts and not batch and not rates:
                return True
            prune = None
            if self._now_ms is not None:
                now = self._now_ms()
                if now - self._last_prune_ms > _PRUNE_EVERY_MS:
                    prune, self._last_prune_ms = now // 1000 - 120, now
            try:
                await self._store.commit_journal([p for p, _f in accepts], batch, rates, prune)
            except Exception as exc:
                log.warning(
                    "activations.commit_failed", accepted=len(accepts), finished=len(batch), error=type(exc).__name__
                )
                failure = exc if isinstance(exc, PlatformError) else StoreError("the store failed")
                for _p, future in accepts:
                    if not future.done():
                        future.set_exception(failure)
                for activation in batch:
                    for waiter in self._waiters.pop(activation.activation_id, ()):
                        if not waiter.done():
                            waiter.set_result(False)
                if self.rates is not None:
                    self.rates.restore_counts(rates)
                return False
            self.commits += 1
            for _p, future in accepts:
                if not future.done():
                    future.set_result(None)
            for activation in batch:
                # Invariant: a record re-recorded after this batch was taken must stay pending.
                if self._pending.get(activation.activation_id) is activation:
                    del self._pending[activation.activation_id]
                for waiter in self._waiters.pop(activation.activation_id, ()):
                    if not waiter.done():
                        waiter.set_result(True)
            if self._pending:
                self._wake.set()
            return True

    async def close(self) -> None:
        """Commit what is queued and stop."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _ in range(10):
            if not self._pending and not self._accepts:
                break
            await self.flush()

    def statistics(self) -> dict[str, Any]:
        """Records waiting for a commit, and commits so far."""
        return {"pending": len(self._pending), "commits": self.commits}


class ActivationService:
    """Reads activation records of the caller's namespace."""

    def __init__(self, store: Store, recorder: ActivationRecorder) -> None:
        self._store = store
        self._recorder = recorder

    async def get(self, namespace: str, activation_id: str) -> Activation:
        """One record of ``namespace`` (the caller was authorized for it), or 404."""
        parse_activation_id(activation_id)
        pending = self._recorder.pending(activation_id)
        if pending is not None and pending.namespace == namespace:
            return pending
        found = await self._store.get_activation(namespace, activation_id)
        if found is None:
            raise NotFoundError()
        return found

    async def list(self, query: ActivationQuery) -> list[Activation]:
        """Records by start, newest first (commits pending ones first so lists are complete)."""
        await self._recorder.flush()
        return await self._store.list_activations(query)

    async def count(self, query: ActivationQuery) -> int:
        """Matching records."""
        await self._recorder.flush()
        return await self._store.count_activations(query)

    def statistics(self) -> dict[str, Any]:
        """Pending record count."""
        return {"pending": len(self._recorder._pending)}
