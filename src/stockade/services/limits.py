"""Per-namespace throttle overrides: stored, cached for the (synchronous) throttle, reported.

The whole table is small (one row per namespace the operator touched) and held in memory. It is
loaded when the app starts, reloaded whenever the security epoch moves (a change by any process:
the store bumps the epoch with every write of limits), and at least every ``refresh_s`` as a
safety net. A process that has not loaded it yet applies the platform defaults.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from stockade.domain import Clock, NamespaceLimits, validate_namespace
from stockade.errors import NotFoundError
from stockade.services.access import SecurityEpoch
from stockade.store import Store

__all__ = ["LimitOverrides"]

log = structlog.get_logger("stockade.limits")


class LimitOverrides:
    """The operator's per-namespace limits, with a cached synchronous lookup."""

    def __init__(
        self, store: Store, clock: Clock, epoch: SecurityEpoch | None = None, *, refresh_s: float = 30.0
    ) -> None:
        self._store = store
        self._clock = clock
        self._refresh_s = refresh_s
        self._overrides: dict[str, NamespaceLimits] = {}
        self._loaded_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        if epoch is not None:
            epoch.subscribe(self._schedule_reload)

    def get(self, namespace: str) -> NamespaceLimits | None:
        """The namespace's overrides as last loaded (never waits for the store)."""
        if self._loaded_at is None or self._clock.monotonic() - self._loaded_at > self._refresh_s:
            self._schedule_reload()
        return self._overrides.get(namespace)

    def _schedule_reload(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._reload_logged(), name="namespace-limits-reload")

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception:
            log.exception("limits.reload_failed")

    async def reload(self) -> None:
        """Read every override from the store."""
        rows = await self._store.list_namespace_limits()
        self._overrides = {row.namespace: row for row in rows}
        self._loaded_at = self._clock.monotonic()

    async def close(self) -> None:
        """Wait for a reload in progress."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    async def set(
        self,
        namespace: str,
        *,
        invocations_per_minute: int | None = None,
        concurrent_invocations: int | None = None,
        fires_per_minute: int | None = None,
    ) -> NamespaceLimits:
        """Set the given throttles of ``namespace`` (the others keep their override, or the default)."""
        validate_namespace(namespace)
        if await self._store.get_namespace(namespace) is None:
            raise NotFoundError(f"namespace '{namespace}' does not exist")
        current = await self._store.get_namespace_limits(namespace) or NamespaceLimits(namespace)
        limits = NamespaceLimits(
            namespace,
            current.invocations_per_minute if invocations_per_minute is None else invocations_per_minute,
            current.concurrent_invocations if concurrent_invocations is None else concurrent_invocations,
            current.fires_per_minute if fires_per_minute is None else fires_per_minute,
            self._clock.now_ms(),
        )
        await self._store.put_namespace_limits(limits)
        self._overrides[namespace] = limits
        return limits

    async def reset(self, namespace: str) -> bool:
        """Back to the platform defaults; False if there were no overrides."""
        removed = await self._store.delete_namespace_limits(namespace)
        self._overrides.pop(namespace, None)
        return removed
