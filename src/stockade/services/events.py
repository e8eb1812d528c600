"""The event pipeline: the EventSink the services report to, and reads of stored events.

``EventPipeline.emit`` is the whole cost a control pays: count the event in the metrics and
append it to a buffer (O(1), no I/O). A background task then, per batch: keeps at most
``events_per_minute`` events per (type, namespace, subject) for storage (the rest are counted
as unstored, so a flood of failed logins cannot fill the database), writes them, evaluates the
alert rules on every event (stored or not, so bursts still alert), stores the alerts raised and
hands them to the webhook dispatcher.

Invariant: a buffered event is never lost silently; one dropped because the buffer is full is
counted (``stockade_security_events_unstored_total{reason="overflow"}``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from stockade.domain import Clock
from stockade.errors import StorageFullError
from stockade.observability.alerts import Alert, AlertEngine, parse_rule
from stockade.observability.events import EVENT_TYPES, SecurityEvent
from stockade.observability.metrics import Metrics
from stockade.store import EventQuery, Store

__all__ = ["AlertHandler", "EventPipeline"]

log = structlog.get_logger("stockade.events")

RULES_TTL_S = 5.0


class AlertHandler(Protocol):
    """Where raised alerts go after they are stored (the webhook dispatcher)."""

    def deliver(self, alert: Alert) -> None:
        """Queue deliveries of ``alert`` (must not block)."""


class _PerKeyRate:
    """At most ``per_minute`` events per key in each wall-clock minute (fixed buckets)."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._minute = -1
        self._counts: dict[tuple[str, str, str], int] = {}

    def allow(self, event: SecurityEvent) -> bool:
        minute = event.time_ms // 60_000
        if minute != self._minute:
            self._minute, self._counts = minute, {}
        key = (event.type.value, event.namespace, event.subject)
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count <= self._per_minute


class EventPipeline:
    """EventSink with write-behind storage and alert evaluation."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        clock: Clock,
        engine: AlertEngine,
        *,
        events_per_minute: int = 120,
        max_buffer: int = 10_000,
        batch_size: int = 256,
        flush_interval_ms: int = 50,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self.engine = engine
        self.alerts: AlertHandler | None = None
        self._rate = _PerKeyRate(events_per_minute)
        self._max_buffer = max_buffer
        self._batch_size = batch_size
        self._interval_s = flush_interval_ms / 1000
        self._buffer: deque[SecurityEvent] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._lock = asyncio.Lock()
        self._rules_loaded_at: float | None = None
        self._listeners: list[Callable[[SecurityEvent], None]] = []

    # -- the sink ------------------------------------------------------------------------------

    def emit(self, event: SecurityEvent) -> None:
        """Count ``event`` now; store and evaluate it behind the caller."""
        self._metrics.security_event(event)
        if len(self._buffer) >= self._max_buffer:
            self._metrics.event_unstored("overflow")
            return
        self._buffer.append(event)
        if len(self._buffer) >= self._batch_size:
            self._wake.set()

    def subscribe(self, listener: Callable[[SecurityEvent], None]) -> None:
        """Also pass every processed event to ``listener`` (tests, future exporters)."""
        self._listeners.append(listener)

    # -- background ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background writer."""
        self._task = asyncio.create_task(self._run(), name="event-pipeline")

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval_s)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("events.flush_failed")
                await asyncio.sleep(0.5)

    async def reload_rules(self) -> None:
        """Read every namespace's alert rules from the store (after a change, and every few seconds)."""
        rules = []
        for namespace, doc in await self._store.list_alert_rules():
            try:
                rules.append(parse_rule(doc, namespace))
            except Exception:  # a stored rule that no longer parses is skipped, not fatal
                log.warning("alerts.rule_skipped", namespace=namespace, rule=str(doc.get("id")))
        self.engine.set_namespace_rules(rules)
        self._rules_loaded_at = self._clock.monotonic()

    async def flush(self) -> None:
        """Store and evaluate everything buffered now."""
        async with self._lock:
            if self._rules_loaded_at is None or self._clock.monotonic() - self._rules_loaded_at > RULES_TTL_S:
                await self.reload_rules()
            while self._buffer:
                batch = [self._buffer.popleft() for _ in range(min(len(self._buffer), self._batch_size * 4))]
                await self._process(batch)

    async def _process(self, batch: Sequence[SecurityEvent]) -> None:
        stored = []
        for event in batch:
            if self._rate.allow(event):
                stored.append(event)
            else:
                self._metrics.event_unstored("rate")
        try:
            await self._store.put_events(stored)
        except StorageFullError:
            log.warning("events.store_deferred", reason="storage full or read-only", count=len(stored))
            for _ in stored:
                self._metrics.event_unstored("store_error")
        except Exception:
            # Counted and logged by type only: the details stay out of the log on purpose.
            log.exception("events.store_failed", count=len(stored), types=sorted({e.type.value for e in stored}))
            for _ in stored:
                self._metrics.event_unstored("store_error")
        raised: list[Alert] = []
        for event in batch:
            raised.extend(self.engine.evaluate(event))
            for listener in self._listeners:
                listener(event)
        if not raised:
            return
        await self._store.put_alerts(raised)
        for alert in raised:
            self._metrics.alert_raised(alert.severity.label)
            log.warning(
                "alert.raised",
                alert_id=alert.alert_id,
                namespace=alert.namespace,
                rule=alert.rule_id,
                severity=alert.severity.label,
                type=alert.type,
                action=alert.action,
                count=alert.count,
            )
            if self.alerts is not None:
                self.alerts.deliver(alert)

    async def close(self) -> None:
        """Process what is buffered and stop."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()

    # -- reads ---------------------------------------------------------------------------------

    async def list(self, query: EventQuery) -> list[SecurityEvent]:
        """Stored events (buffered ones are flushed first, so a list is complete)."""
        await self.flush()
        return await self._store.list_events(query)

    def statistics(self) -> dict[str, int]:
        """Buffered events and the alert engine's windows."""
        return {"buffered": len(self._buffer), **self.engine.statistics()}


def valid_type_filter(raw: str) -> bool:
    """A ``?type=`` value: a known type, or ``area.*``."""
    if raw.endswith(".*"):
        prefix = raw[:-1]
        return any(t.startswith(prefix) for t in EVENT_TYPES)
    return raw in EVENT_TYPES
