"""Metrics: an app-owned registry, unit-suffixed names, bounded labels, pool read at scrape time."""

from __future__ import annotations

from prometheus_client import REGISTRY

from stockade.observability.events import EventType, SecurityEvent, Severity
from stockade.observability.metrics import Metrics, NullMetrics


def test_each_metrics_object_has_its_own_registry():
    a, b = Metrics(), Metrics()
    a.invocation("python:3", "success", 12, None)
    assert a.value("stockade_invocations_total", {"kind": "python:3", "status": "success"}) == 1
    assert b.value("stockade_invocations_total", {"kind": "python:3", "status": "success"}) == 0
    assert REGISTRY.get_sample_value("stockade_invocations_total", {"kind": "python:3", "status": "success"}) is None


def test_invocations_record_count_duration_cold_start_and_tags():
    m = Metrics(tag_cap=1)
    m.invocation("python:3", "success", 250, 40, ("payments", "edge"))
    m.invocation("python:3", "developer_error", 5, None, ("payments",))
    assert m.value("stockade_invocation_duration_seconds_count", {"kind": "python:3"}) == 2
    assert m.value("stockade_invocation_duration_seconds_sum", {"kind": "python:3"}) == 0.255
    assert m.value("stockade_cold_start_seconds_count", {"kind": "python:3"}) == 1
    assert m.value("stockade_cold_start_seconds_bucket", {"kind": "python:3", "le": "0.05"}) == 1
    assert m.value("stockade_tagged_invocations_total", {"tag": "payments", "status": "success"}) == 1
    assert m.value("stockade_tagged_invocations_total", {"tag": "_other", "status": "success"}) == 1
    assert m.value("stockade_tagged_invocations_total", {"tag": "payments", "status": "developer_error"}) == 1


def test_security_events_count_denials_and_anomalies():
    m = Metrics()
    m.security_event(SecurityEvent(EventType.AUTH_FAILED, Severity.LOW, 1))
    m.security_event(SecurityEvent(EventType.SCHEMA_REFUSED, Severity.MEDIUM, 1))
    m.security_event(SecurityEvent(EventType.ANOMALY_DURATION, Severity.MEDIUM, 1))
    assert m.value("stockade_security_events_total", {"type": "auth.failed", "severity": "low"}) == 1
    assert m.value("stockade_denials_total", {"kind": "auth"}) == 1
    assert m.value("stockade_denials_total", {"kind": "schema"}) == 1
    assert m.value("stockade_anomalies_total", {"detector": "duration"}) == 1


def test_pool_gauges_and_kills_are_read_from_the_runner_at_scrape_time():
    m = Metrics()
    stats = {"live": 3, "idle": 2, "busy": 1, "max_sandboxes": 64, "waiting": 0, "evictions": 4, "reaped": 1}
    m.read_pool_from(lambda: stats)
    m.sandbox_killed("timeout")
    m.sandbox_killed("integrity")
    assert m.value("stockade_warm_pool_sandboxes", {"state": "idle"}) == 2
    assert m.value("stockade_sandbox_kills_total", {"reason": "evicted"}) == 4
    assert m.value("stockade_sandbox_kills_total", {"reason": "idle_expired"}) == 1
    assert m.value("stockade_sandbox_kills_total", {"reason": "timeout"}) == 1
    stats["idle"] = 7
    assert m.value("stockade_warm_pool_sandboxes", {"state": "idle"}) == 7
    text = m.render().decode()
    assert "# TYPE stockade_invocation_duration_seconds histogram" in text
    assert 'stockade_sandbox_kills_total{reason="integrity"} 1.0' in text


def test_a_failing_pool_source_does_not_break_the_scrape():
    m = Metrics()

    def broken():
        raise RuntimeError("invoker gone")

    m.read_pool_from(broken)
    assert b"stockade_warm_pool_sandboxes" in m.render()


def test_gate_alert_and_delivery_counters():
    m = Metrics()
    m.deploy_gate("blocked", {"critical": 0, "high": 2, "low": 1})
    m.alert_raised("critical")
    m.delivery("dead_lettered")
    m.event_unstored("rate")
    assert m.value("stockade_deploy_gate_findings_total", {"severity": "high", "decision": "blocked"}) == 2
    assert m.value("stockade_deploy_gate_findings_total", {"severity": "critical", "decision": "blocked"}) == 0
    assert m.value("stockade_deploy_gate_decisions_total", {"decision": "blocked"}) == 1
    assert m.value("stockade_alerts_total", {"severity": "critical"}) == 1
    assert m.value("stockade_alert_deliveries_total", {"outcome": "dead_lettered"}) == 1
    assert m.value("stockade_security_events_unstored_total", {"reason": "rate"}) == 1


def test_null_metrics_record_nothing_on_the_hot_path():
    m = NullMetrics()
    m.invocation("python:3", "success", 1, 1, ("a",))
    m.security_event(SecurityEvent(EventType.AUTH_FAILED, Severity.LOW, 1))
    m.sandbox_killed("timeout")
    assert m.value("stockade_invocations_total", {"kind": "python:3", "status": "success"}) == 0
