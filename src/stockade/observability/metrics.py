"""Prometheus metrics, owned by the app: one ``CollectorRegistry`` per ``Metrics`` (never the global one).

Names carry their unit (``_seconds``, ``_total``). Label values are bounded: kinds and statuses
are closed sets, event types are ``EventType``, tags pass through ``TagLabels`` (a cap, then
``_other``), and no label carries a namespace or action name.

Hot-path cost: invocations are plain counters and bucket arrays (a few dict lookups and a
bisect, no lock) turned into metric families when Prometheus scrapes; the rarer events use
prometheus_client's own counters. Pool gauges and pool-side sandbox kills are read from the
runner's ``statistics()`` at scrape time, not pushed.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from stockade.observability.events import DENIAL_KINDS, SecurityEvent
from stockade.observability.tags import TagLabels

__all__ = ["CONTENT_TYPE_LATEST", "DURATION_BUCKETS_S", "Metrics", "NullMetrics", "PoolStatisticsSource"]

# Invocation and init times: 1 ms to 5 min (the longest action timeout).
DURATION_BUCKETS_S: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# Pool counters that end a sandbox, by the ``reason`` label they become.
_POOL_KILLS: Final = {"evictions": "evicted", "reaped": "idle_expired", "recycled": "recycled"}
_POOL_GAUGES: Final = ("live", "idle", "busy", "max_sandboxes", "waiting")

# A no-argument callable returning the runner's counters (``live``, ``idle``, ``evictions``, ...).
PoolStatisticsSource = Callable[[], Mapping[str, int]]


class _RuntimeCollector:
    """Warm pool gauges and sandbox kills by reason, read when Prometheus scrapes."""

    def __init__(self) -> None:
        self.source: PoolStatisticsSource | None = None
        # Kills the services observe from run outcomes (timeouts, integrity, failures).
        self.kills: dict[str, int] = {}

    def collect(self) -> Iterable[Metric]:
        stats: Mapping[str, int] = {}
        if self.source is not None:
            try:
                stats = self.source()
            except Exception:
                stats = {}
        pool = GaugeMetricFamily("stockade_warm_pool_sandboxes", "Sandboxes on this invoker by state", labels=["state"])
        for name in _POOL_GAUGES:
            if name in stats:
                pool.add_metric([name], float(stats[name]))
        yield pool
        kills = CounterMetricFamily(
            "stockade_sandbox_kills", "Sandboxes destroyed, by reason", labels=["reason"]
        )  # fmt: skip
        merged = dict(self.kills)
        for counter, reason in _POOL_KILLS.items():
            if counter in stats:
                merged[reason] = merged.get(reason, 0) + int(stats[counter])
        for reason in sorted(merged):
            kills.add_metric([reason], float(merged[reason]))
        yield kills


class _Histogram:
    """Bucket counts and sums per label value; ``observe`` is a bisect and two adds."""

    def __init__(self) -> None:
        self.series: dict[str, tuple[list[int], list[float]]] = {}

    def observe(self, label: str, value: float) -> None:
        found = self.series.get(label)
        if found is None:
            found = self.series[label] = ([0] * (len(DURATION_BUCKETS_S) + 1), [0.0])
        found[0][bisect.bisect_left(DURATION_BUCKETS_S, value)] += 1
        found[1][0] += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, documentation, labels=["kind"])
        for label, (counts, total) in sorted(self.series.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*DURATION_BUCKETS_S, float("inf")), counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
            family.add_metric([label], buckets, total[0])
        return family


class _InvocationCollector:
    """Invocations by kind and status, by tag, and their durations and cold starts.

    Invariant: only the event loop's thread updates these and the scrape (an async handler on
    the same loop) reads them, so plain ints need no lock.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.tagged: dict[tuple[str, str], int] = {}
        self.durations = _Histogram()
        self.cold_starts = _Histogram()

    def collect(self) -> Iterable[Metric]:
        invocations = CounterMetricFamily(
            "stockade_invocations", "Activations finished, by kind and status", labels=["kind", "status"]
        )
        for (kind, status), count in sorted(self.counts.items()):
            invocations.add_metric([kind, status], float(count))
        yield invocations
        tagged = CounterMetricFamily(
            "stockade_tagged_invocations",
            "Activations of tagged actions, by tag (capped: see docs/design/monitoring.md) and status",
            labels=["tag", "status"],
        )
        for (tag, status), count in sorted(self.tagged.items()):
            tagged.add_metric([tag, status], float(count))
        yield tagged
        yield self.durations.family(
            "stockade_invocation_duration_seconds", "Activation duration (end - start, init included), by kind"
        )
        yield self.cold_starts.family(
            "stockade_cold_start_seconds", "Init time of activations that started a new sandbox, by kind"
        )


class Metrics:
    """Every metric Stockade exports, on a registry of its own."""

    def __init__(self, *, tag_cap: int = TagLabels.DEFAULT_CAP) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.tags = TagLabels(tag_cap)
        # Invocation metrics are plain counters read at scrape time (the hot path takes no lock).
        self._activity = _InvocationCollector()
        r.register(self._activity)
        self._denials = Counter("stockade_denials", "Requests refused by a control, by kind", ["kind"], registry=r)
        self._events = Counter(
            "stockade_security_events",
            "Security events emitted, by type and severity",
            ["type", "severity"],
            registry=r,
        )
        self._events_dropped = Counter(
            "stockade_security_events_unstored",
            "Events counted but not stored (over the per-key rate, or the buffer was full), by reason",
            ["reason"],
            registry=r,
        )
        self._findings = Counter(
            "stockade_deploy_gate_findings",
            "Deploy-gate findings, by severity and the gate's decision",
            ["severity", "decision"],
            registry=r,
        )
        self._decisions = Counter(
            "stockade_deploy_gate_decisions", "Deploy-gate decisions", ["decision"], registry=r
        )  # fmt: skip
        self._alerts = Counter("stockade_alerts", "Alerts raised, by severity", ["severity"], registry=r)
        self._deliveries = Counter(
            "stockade_alert_deliveries", "Webhook delivery attempts, by outcome", ["outcome"], registry=r
        )
        self._anomalies = Counter("stockade_anomalies", "Anomalies detected, by detector", ["detector"], registry=r)
        self._runtime = _RuntimeCollector()
        r.register(self._runtime)

    # -- pool ----------------------------------------------------------------------------------

    def read_pool_from(self, source: PoolStatisticsSource | None) -> None:
        """Export the runner's warm pool counters (``live``, ``idle``, ``busy``, ``evictions``, ...)."""
        self._runtime.source = source

    def sandbox_killed(self, reason: str) -> None:
        """One sandbox destroyed by the services' view of an outcome (``timeout``, ``integrity``, ``failed``)."""
        self._runtime.kills[reason] = self._runtime.kills.get(reason, 0) + 1

    # -- invocations ---------------------------------------------------------------------------

    def invocation(
        self, kind: str, status: str, duration_ms: int, init_time_ms: int | None, tags: tuple[str, ...] = ()
    ) -> None:
        """One finished activation. ``status`` is success|application_error|developer_error|internal_error."""
        activity = self._activity
        key = (kind, status)
        activity.counts[key] = activity.counts.get(key, 0) + 1
        activity.durations.observe(kind, duration_ms / 1000)
        if init_time_ms is not None:
            activity.cold_starts.observe(kind, init_time_ms / 1000)
        for tag in tags:
            tag_key = (self.tags.label(tag), status)
            activity.tagged[tag_key] = activity.tagged.get(tag_key, 0) + 1

    # -- events, gate, alerts ------------------------------------------------------------------

    def security_event(self, event: SecurityEvent) -> None:
        """Count an event, and a denial when it is one."""
        self._events.labels(event.type.value, event.severity.label).inc()
        kind = DENIAL_KINDS.get(event.type)
        if kind is not None:
            self._denials.labels(kind).inc()
        if event.type.value.startswith("anomaly."):
            self._anomalies.labels(event.type.value.removeprefix("anomaly.")).inc()

    def event_unstored(self, reason: str) -> None:
        """An event was counted but not stored (``rate`` or ``overflow``)."""
        self._events_dropped.labels(reason).inc()

    def deploy_gate(self, decision: str, counts: Mapping[str, int]) -> None:
        """One gate decision (passed, blocked, accepted, skipped) and its findings by severity."""
        self._decisions.labels(decision).inc()
        for severity, count in counts.items():
            if count:
                self._findings.labels(severity, decision).inc(count)

    def alert_raised(self, severity: str) -> None:
        """One alert raised."""
        self._alerts.labels(severity).inc()

    def delivery(self, outcome: str) -> None:
        """One webhook delivery attempt: ``delivered``, ``failed`` (will retry) or ``dead_lettered``."""
        self._deliveries.labels(outcome).inc()

    # -- exposition ----------------------------------------------------------------------------

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """One sample's value (0.0 when absent); for tests and the benchmark."""
        found = self.registry.get_sample_value(name, dict(labels or {}))
        return float(found) if found is not None else 0.0


class NullMetrics(Metrics):
    """Records nothing (the benchmark's baseline, and where metrics are turned off)."""

    def invocation(
        self, kind: str, status: str, duration_ms: int, init_time_ms: int | None, tags: tuple[str, ...] = ()
    ) -> None:
        """Nothing."""

    def security_event(self, event: SecurityEvent) -> None:
        """Nothing."""

    def sandbox_killed(self, reason: str) -> None:
        """Nothing."""
