"""Monitoring wired into the services: metrics per activation, anomaly detection behind the
response, security events from the sandbox and the deploy gate, and the parts' lifecycle.

``ActivationMonitor.finished`` is called by the invoke path right after an activation is
recorded. It updates the metrics at once (a few dict lookups and counter adds) and queues the
activation for the anomaly detectors, which a background task runs in batches; the response
never waits for detection. The queue is bounded: when detection falls behind, the oldest
queued activations are skipped (and counted) rather than slowing invocations.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, final, runtime_checkable

import httpx
import structlog

from stockade.config import Settings
from stockade.domain import JSON, Action, Activation, ActivationStatus, Clock
from stockade.observability.alerts import AlertEngine, load_alert_rules
from stockade.observability.anomaly import OUTPUT_SCHEMA_ANNOTATION, AnomalyMonitor, Observation
from stockade.observability.events import EventSink, EventType, SecurityEvent, Severity
from stockade.observability.log_patterns import load_log_patterns
from stockade.observability.metrics import Metrics, PoolStatisticsSource
from stockade.observability.tags import TAGS_ANNOTATION, tags_of
from stockade.services.alerts import AlertService, WebhookDispatcher
from stockade.services.events import EventPipeline
from stockade.services.scans import ActionVulnerable, DeployChecked
from stockade.services.vault import ParameterVault
from stockade.store import Store

__all__ = [
    "STATUS_LABELS",
    "ActivationMonitor",
    "GateEvents",
    "Monitoring",
    "ReportsStatistics",
    "build_monitoring",
    "findings_events",
    "new_event_pipeline",
]

log = structlog.get_logger("stockade.monitoring")

STATUS_LABELS: Final = {
    ActivationStatus.SUCCESS: "success",
    ActivationStatus.APPLICATION_ERROR: "application_error",
    ActivationStatus.DEVELOPER_ERROR: "developer_error",
    ActivationStatus.INTERNAL_ERROR: "internal_error",
}
# Finding prefixes of the invoker's integrity check (invoker/outcomes.py) → event type.
_FINDING_TYPES: Final = {
    "code_modified": EventType.SANDBOX_TAMPER,
    "entry_replaced": EventType.SANDBOX_TAMPER,
    "integrity_check_failed": EventType.SANDBOX_TAMPER,
    "stray_processes": EventType.SANDBOX_STRAY_PROCESS,
}


@runtime_checkable
class ReportsStatistics(Protocol):
    """An action runner that reports its warm pool (the local invoker does; remote dispatchers may)."""

    def pool_statistics(self) -> Mapping[str, int]:
        """Counters such as ``live``, ``idle``, ``busy``, ``max_sandboxes``, ``waiting``, ``evictions``."""


def findings_events(
    findings: Iterable[str], *, namespace: str, action: str, activation_id: str, time_ms: int, tags: tuple[str, ...]
) -> list[SecurityEvent]:
    """One event per integrity finding of a run (the sandbox was destroyed)."""
    events = []
    for finding in findings:
        kind, _, detail = finding.partition(":")
        events.append(
            SecurityEvent(
                type=_FINDING_TYPES.get(kind.strip(), EventType.SANDBOX_TAMPER),
                severity=Severity.CRITICAL,
                time_ms=time_ms,
                namespace=namespace,
                action=action,
                activation_id=activation_id,
                source="invoker",
                details={"finding": kind.strip(), "detail": detail.strip()[:200], "tags": list(tags)},
            )
        )
    return events


_MAX_PROFILES: Final = 4096


@final
@dataclass(frozen=True, slots=True)
class _Profile:
    """What monitoring reads from an action, computed once per cached Action object."""

    kind: str
    tags: tuple[str, ...]
    output_schema: JSON
    is_sequence: bool


class ActivationMonitor:
    """Per-activation metrics now; anomaly detection behind."""

    def __init__(
        self,
        metrics: Metrics,
        events: EventSink,
        detector: AnomalyMonitor | None,
        *,
        max_queue: int = 10_000,
        batch_size: int = 512,
        interval_ms: int = 20,
    ) -> None:
        self._metrics = metrics
        self.events = events
        self.detector = detector
        self._queue: deque[tuple[Activation, Action, int | None, int]] = deque()
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._interval_s = interval_ms / 1000
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.skipped = 0
        self._profiles: dict[int, tuple[Action, _Profile]] = {}

    def finished(
        self, activation: Activation, action: Action, *, init_time_ms: int | None, timed_out: bool
    ) -> None:  # fmt: skip
        """An activation was recorded: count it, and queue it for the detectors."""
        status = activation.response.status
        profile = self._profile(action)
        duration_ms = activation.duration
        self._metrics.invocation(profile.kind, STATUS_LABELS[status], duration_ms, init_time_ms, profile.tags)
        if timed_out:
            self._metrics.sandbox_killed("timeout")
        elif status is ActivationStatus.DEVELOPER_ERROR and not profile.is_sequence:
            self._metrics.sandbox_killed("failed")
        if self.detector is None:
            return
        if len(self._queue) >= self._max_queue:
            self._queue.popleft()
            self.skipped += 1
        self._queue.append((activation, action, init_time_ms, duration_ms))
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    def _profile(self, action: Action) -> _Profile:
        # Invariant: keyed by the Action object the catalog caches, and checked by identity, so a
        # reused id() never returns another action's profile.
        hit = self._profiles.get(id(action))
        if hit is not None and hit[0] is action:
            return hit[1]
        if len(self._profiles) >= _MAX_PROFILES:
            self._profiles.clear()
        profile = _Profile(
            kind=action.exec.kind,
            tags=tags_of(action.annotation(TAGS_ANNOTATION)),
            output_schema=action.annotation(OUTPUT_SCHEMA_ANNOTATION),
            is_sequence=action.exec.is_sequence,
        )
        self._profiles[id(action)] = (action, profile)
        return profile

    def sandbox_findings(self, action: Action, activation_id: str, findings: tuple[str, ...], time_ms: int) -> None:
        """The integrity check found tampering or stray processes: events, and a kill counted."""
        self._metrics.sandbox_killed("integrity")
        tags = tags_of(action.annotation(TAGS_ANNOTATION))
        for event in findings_events(
            findings,
            namespace=action.path.namespace,
            action=action.path.key,
            activation_id=activation_id,
            time_ms=time_ms,
            tags=tags,
        ):
            self.events.emit(event)

    def start(self) -> None:
        """Start the detection task."""
        if self.detector is not None:
            self._task = asyncio.create_task(self._run(), name="anomaly-detection")

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval_s)
            self._wake.clear()
            try:
                self.detect_pending()
            except Exception:
                log.exception("anomaly.detection_failed")

    def detect_pending(self) -> int:
        """Run the detectors on every queued activation now; returns how many."""
        detector = self.detector
        if detector is None:
            return 0
        done = 0
        while self._queue:
            activation, action, init_time_ms, duration_ms = self._queue.popleft()
            profile = self._profile(action)
            obs = Observation(
                activation.namespace,
                action.path.key if action.path.namespace == activation.namespace else action.path.relative,
                action.version,
                activation.activation_id,
                activation.start,
                max(0, duration_ms - (init_time_ms or 0)),
                not activation.response.success,
                init_time_ms is not None,
                activation.response.result,
                activation.logs if not profile.is_sequence else (),
                profile.output_schema,
                profile.tags,
            )
            for event in detector.events(obs):
                self.events.emit(event)
            done += 1
        return done

    async def close(self) -> None:
        """Detect what is queued and stop."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.detect_pending()


class GateEvents:
    """The deploy gate's event hook: counts decisions and findings, emits block/override/vulnerable events."""

    def __init__(self, metrics: Metrics, events: EventSink, clock: Clock) -> None:
        self._metrics = metrics
        self.events = events
        self._clock = clock

    async def deploy_checked(self, event: DeployChecked) -> None:
        """Count the decision; blocked and accepted deploys become events."""
        self._metrics.deploy_gate(event.decision, event.counts)
        if event.decision not in ("blocked", "accepted"):
            return
        self.events.emit(
            SecurityEvent(
                type=EventType.DEPLOY_BLOCKED if event.decision == "blocked" else EventType.DEPLOY_RISK_ACCEPTED,
                severity=Severity.HIGH if event.decision == "accepted" else Severity.MEDIUM,
                time_ms=event.when_ms,
                namespace=event.namespace,
                action=event.action,
                subject=event.subject,
                source="gate",
                details={"version": event.version, "findings": list(event.blocking[:25])},
            )
        )

    async def action_vulnerable(self, event: ActionVulnerable) -> None:
        """A deployed version matches newly imported advisories."""
        self.events.emit(
            SecurityEvent(
                type=EventType.ACTION_VULNERABLE,
                severity=Severity.HIGH,
                time_ms=event.when_ms,
                namespace=event.namespace,
                action=event.action,
                source="gate",
                details={"version": event.version, "advisories": list(event.advisories[:50])},
            )
        )


@final
@dataclass(frozen=True, slots=True)
class Monitoring:
    """The monitoring parts the services share, started and stopped with the app."""

    metrics: Metrics
    events: EventPipeline
    activations: ActivationMonitor
    alerts: AlertService
    dispatcher: WebhookDispatcher
    gate: GateEvents

    def start(self) -> None:
        """Start the background tasks (event writer, detection)."""
        self.events.start()
        self.activations.start()

    async def close(self) -> None:
        """Detect and store what is pending, then let deliveries finish (or dead-letter them)."""
        await self.activations.close()
        await self.events.close()
        await self.dispatcher.close()

    async def settle(self) -> None:
        """Run detection, store events, evaluate rules and finish deliveries now (tests)."""
        self.activations.detect_pending()
        await self.events.flush()
        await self.dispatcher.wait_idle()


def new_event_pipeline(settings: Settings, store: Store, metrics: Metrics, clock: Clock) -> EventPipeline:
    """The event sink, with the platform's alert rules (settings file or shipped defaults)."""
    engine = AlertEngine(
        admin_namespace=settings.default_namespace,
        platform_rules=load_alert_rules(settings.observability.alert_rules_file or None),
    )
    return EventPipeline(
        store,
        metrics,
        clock,
        engine,
        events_per_minute=settings.observability.events_per_minute,
        flush_interval_ms=settings.store.activation_flush_interval_ms,
    )


def build_monitoring(
    settings: Settings,
    store: Store,
    vault: ParameterVault,
    clock: Clock,
    metrics: Metrics,
    pipeline: EventPipeline,
    *,
    pool_statistics: PoolStatisticsSource | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> Monitoring:
    """Wire detection, alerts and delivery around ``pipeline``."""
    config = settings.observability
    metrics.read_pool_from(pool_statistics)
    detector = AnomalyMonitor(log_patterns=load_log_patterns(config.log_patterns_file or None))
    dispatcher = WebhookDispatcher(
        store,
        vault,
        clock,
        metrics,
        config,
        admin_namespace=settings.default_namespace,
        transport=webhook_transport,
    )
    pipeline.alerts = dispatcher
    alerts = AlertService(
        store, vault, clock, config, pipeline, dispatcher, admin_namespace=settings.default_namespace
    )  # fmt: skip
    return Monitoring(
        metrics=metrics,
        events=pipeline,
        activations=ActivationMonitor(metrics, pipeline, detector if config.anomaly_detection else None),
        alerts=alerts,
        dispatcher=dispatcher,
        gate=GateEvents(metrics, pipeline, clock),
    )
