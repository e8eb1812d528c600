"""Per-namespace throttles: invocations per minute, concurrent activations, trigger fires.

Fixed one-minute buckets with the current request counted, as OpenWhisk does. State is per
process: in scale-out each API process enforces its share. The operator may override the limits
per namespace (``overrides``: a cached lookup, see services/limits.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from stockade.domain import NamespaceLimits
from stockade.errors import ThrottledError

__all__ = ["Throttle"]


@dataclass(slots=True)
class _Bucket:
    minute: int = -1
    count: int = 0


@dataclass(slots=True)
class Throttle:
    """Counts per namespace; ``now_ms`` is the injected clock."""

    now_ms: Callable[[], int]
    invocations_per_minute: int
    concurrent_invocations: int
    fires_per_minute: int
    # The namespace's own limits, if the operator set any (None: the defaults above for everyone).
    overrides: Callable[[str], NamespaceLimits | None] | None = None
    _invokes: dict[str, _Bucket] = field(default_factory=dict)
    _fires: dict[str, _Bucket] = field(default_factory=dict)
    _in_flight: dict[str, int] = field(default_factory=dict)

    def _tick(self, buckets: dict[str, _Bucket], namespace: str, allowed: int) -> None:
        minute = self.now_ms() // 60_000
        bucket = buckets.setdefault(namespace, _Bucket())
        if bucket.minute != minute:
            bucket.minute, bucket.count = minute, 0
        bucket.count += 1
        if bucket.count > allowed:
            raise ThrottledError(f"Too many requests in the last minute (count: {bucket.count}, allowed: {allowed}).")

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
        self._tick(self._invokes, namespace, per_minute)
        in_flight = self._in_flight.get(namespace, 0)
        if in_flight >= concurrent:
            raise ThrottledError(f"Too many concurrent requests in flight (count: {in_flight}, allowed: {concurrent}).")

    def check_fire(self, namespace: str) -> None:
        """Count one trigger fire; 429 when over the per-minute limit."""
        self._tick(self._fires, namespace, self.limits(namespace)[2])

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
