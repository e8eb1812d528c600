"""Quotas per client per UTC day and month, counted in the store and reserved in blocks.

A store round trip per request would cost more than the rest of the gateway together, so each
process reserves a block of requests (a lease) with one conditional update and counts it down
in memory. Invariants:

* The store's count never passes the limit: every reservation is conditional, whatever the
  number of processes. A client is never let past its quota.
* A block is at most 1% of the limit (and 1000 requests), and 1 when the quota is small or
  nearly spent, so reserved-but-unused requests (given back on shutdown, lost on a crash) cost
  a client at most 1% of its quota per process. Small quotas are therefore exact.
* The counts survive restarts: they are the store's.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog

from stockade.domain import ApiRoute, Clock
from stockade.errors import ThrottledError
from stockade.store import QuotaWindow, Store

__all__ = ["QuotaLeases", "RetryLaterError", "quota_windows"]

log = structlog.get_logger("stockade.quotas")

_MAX_BLOCK: Final = 1000
# Leases refilled faster than this grow (double); slower ones go back to single requests.
_GROW_WITHIN_S: Final = 1.0
_MAX_LEASES: Final = 100_000


class RetryLaterError(ThrottledError):
    """A 429 that tells the client when to come back (the Retry-After header)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, retry_after_s)


@functools.lru_cache(maxsize=4)
def _periods(day_number: int) -> tuple[str, int, str, int]:
    """The UTC day and month of a day number (days since the epoch), each with its end in ms."""
    day_start = datetime.fromtimestamp(day_number * 86_400, UTC)
    next_month = (day_start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (
        f"d:{day_start:%Y-%m-%d}",
        (day_number + 1) * 86_400_000,
        f"m:{day_start:%Y-%m}",
        int(next_month.timestamp() * 1000),
    )


def quota_windows(route: ApiRoute, now_ms: int) -> list[QuotaWindow]:
    """The route's quota periods at ``now_ms``: the UTC day and month, each with its end."""
    quota = route.options.quota
    if quota is None:
        return []
    day, day_end_ms, month, month_end_ms = _periods(now_ms // 86_400_000)
    windows = []
    if quota.per_day is not None:
        windows.append(QuotaWindow(day, quota.per_day, day_end_ms))
    if quota.per_month is not None:
        windows.append(QuotaWindow(month, quota.per_month, month_end_ms))
    return windows


@dataclass(slots=True)
class _Lease:
    """Requests of one client, route and period reserved in the store and not used yet."""

    period: str
    units: int = 0
    block: int = 1
    refilled_s: float = -math.inf
    identity: tuple[str, str, str] = field(default=("", "", ""))


class QuotaLeases:
    """Counts requests against quotas; one per process."""

    def __init__(self, store: Store, clock: Clock, *, max_leases: int = _MAX_LEASES) -> None:
        self._store = store
        self._clock = clock
        self._max_leases = max_leases
        self._leases: dict[tuple[str, str, str, str], _Lease] = {}

    def _lease(self, route: ApiRoute, client: str, window: QuotaWindow) -> _Lease:
        key = (route.namespace, route.route_id, client, window.period[:1])
        lease = self._leases.get(key)
        if lease is None or lease.period != window.period:
            if len(self._leases) >= self._max_leases:
                # Dropping leases loses their reserved requests: conservative, never permissive.
                self._leases.clear()
            lease = self._leases[key] = _Lease(window.period, identity=(route.namespace, route.route_id, client))
        return lease

    def _next_block(self, lease: _Lease, limit: int) -> int:
        cap = max(1, min(_MAX_BLOCK, limit // 100))
        grow = self._clock.monotonic() - lease.refilled_s < _GROW_WITHIN_S
        return min(cap, lease.block * 2) if grow else 1

    async def consume(self, route: ApiRoute, client: str) -> None:
        """Count one request of ``client`` on ``route`` in every quota period; 429 with Retry-After when spent."""
        now_ms = self._clock.now_ms()
        taken: list[_Lease] = []
        try:
            for window in quota_windows(route, now_ms):
                lease = self._lease(route, client, window)
                # Another request may take what this one reserved while it waited: reserve again then.
                while lease.units <= 0:
                    await self._refill(route, client, window, lease, now_ms)
                lease.units -= 1
                taken.append(lease)
        except RetryLaterError:
            # The other periods' requests stay reserved here, for this client's next request.
            for lease in taken:
                lease.units += 1
            raise

    async def _refill(self, route: ApiRoute, client: str, window: QuotaWindow, lease: _Lease, now_ms: int) -> None:
        block = self._next_block(lease, window.limit)
        reserved = await self._store.reserve_quota(route.namespace, route.route_id, client, window, block)
        if not reserved and block > 1:
            block = 1
            reserved = await self._store.reserve_quota(route.namespace, route.route_id, client, window, 1)
        if not reserved:
            per = "day" if window.period.startswith("d:") else "month"
            raise RetryLaterError(
                f"Quota exceeded: {window.limit} requests per {per} for this client.",
                math.ceil((window.expires_ms - now_ms) / 1000),
            )
        lease.units += block
        lease.block = block
        lease.refilled_s = self._clock.monotonic()

    async def release(self) -> None:
        """Give every unused reservation back to the store (on shutdown)."""
        leases, self._leases = list(self._leases.values()), {}
        for lease in leases:
            if lease.units <= 0:
                continue
            namespace, route_id, client = lease.identity
            try:
                await self._store.release_quota(namespace, route_id, client, lease.period, lease.units)
            except Exception:
                log.exception("quotas.release_failed", namespace=namespace)
