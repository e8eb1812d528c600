"""Activation records: written behind the response in batches, read back through one service."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from stockade.domain import Activation, parse_activation_id
from stockade.errors import NotFoundError
from stockade.store import ActivationQuery, Store

__all__ = ["ActivationRecorder", "ActivationService"]

log = structlog.get_logger("stockade.activations")


class ActivationRecorder:
    """Write-behind buffer of activation records.

    Invariant: a record is readable (from ``_pending``) from the moment it is recorded until it
    is committed, so a client never sees a gap between the response and the store.
    """

    def __init__(self, store: Store, *, batch_size: int = 256, flush_interval_ms: int = 20) -> None:
        self._store = store
        self._batch_size = batch_size
        self._interval_s = flush_interval_ms / 1000
        self._pending: dict[str, Activation] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # Invariant: one flush at a time, so two callers never insert the same batch twice.
        self._flushing = asyncio.Lock()

    def start(self) -> None:
        """Start the background flusher."""
        self._task = asyncio.create_task(self._run(), name="activation-recorder")

    def record(self, activation: Activation) -> None:
        """Queue a record for writing."""
        self._pending[activation.activation_id] = activation
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    def pending(self, activation_id: str) -> Activation | None:
        """A record not yet committed."""
        return self._pending.get(activation_id)

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval_s)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Commit everything pending; on failure keep it for the next attempt."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch = list(self._pending.values())[: self._batch_size * 4]
        try:
            await self._store.put_activations(batch)
        except Exception:
            log.exception("activations.flush_failed", count=len(batch))
            await asyncio.sleep(0.5)
            return
        for activation in batch:
            # Invariant: a record re-recorded after this batch was taken must stay pending.
            if self._pending.get(activation.activation_id) is activation:
                del self._pending[activation.activation_id]

    async def close(self) -> None:
        """Flush and stop."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _ in range(10):
            if not self._pending:
                break
            await self.flush()


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
        """Records by start, newest first (flushes pending ones first so lists are complete)."""
        await self._recorder.flush()
        return await self._store.list_activations(query)

    async def count(self, query: ActivationQuery) -> int:
        """Matching records."""
        await self._recorder.flush()
        return await self._store.count_activations(query)

    def statistics(self) -> dict[str, Any]:
        """Pending record count."""
        return {"pending": len(self._recorder._pending)}
