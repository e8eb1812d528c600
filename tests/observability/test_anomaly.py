"""The per-action monitor: baselines per version, bounded state, output schemas, events."""

from __future__ import annotations

import pytest

from stockade.errors import BadRequestError
from stockade.observability.anomaly import AnomalyMonitor, Detectors, Observation, check_output_schema
from stockade.observability.detectors import DurationDetector
from stockade.observability.events import EventType, Severity
from stockade.observability.log_patterns import LogPatterns


def obs(n, *, action="a", version="0.0.1", run_ms=20, result=None, is_cold=False, **kw):
    return Observation(
        namespace="ns", action=action, version=version, activation_id=f"{n:032x}", time_ms=n * 1000,
        run_ms=run_ms, is_error=False, is_cold=is_cold, result={"ok": True} if result is None else result, **kw,
    )  # fmt: skip


def test_a_new_version_starts_a_new_baseline():
    monitor = AnomalyMonitor(Detectors(duration=DurationDetector(warmup=10)))
    for n in range(50):
        monitor.observe(obs(n))
    assert [a.type for a in monitor.observe(obs(50, run_ms=2000))] == [EventType.ANOMALY_DURATION]
    # Version 0.0.2 is slower by design: it warms up again instead of alerting.
    assert all(not monitor.observe(obs(60 + n, version="0.0.2", run_ms=2000)) for n in range(10))


def test_baselines_are_bounded_and_least_recently_used_go_first():
    monitor = AnomalyMonitor(max_actions=3)
    for name in ("a", "b", "c", "a", "d"):
        monitor.observe(obs(1, action=name))
    assert monitor.statistics()["actions"] == 3
    assert set(k[1] for k in monitor._baselines) == {"a", "c", "d"}


def test_output_schema_violations_name_the_path_and_keyword_never_the_value():
    schema = {"type": "object", "properties": {"token": {"type": "integer"}}}
    monitor = AnomalyMonitor()
    events = monitor.events(obs(1, result={"token": "s3cr3t-value"}, output_schema=schema, tags=("billing",)))
    assert [e.type for e in events] == [EventType.ANOMALY_OUTPUT_SCHEMA]
    event = events[0]
    assert event.severity is Severity.HIGH
    assert event.details["path"] == "/token"
    assert event.details["keyword"] == "type"
    assert event.details["tags"] == ["billing"]
    assert "s3cr3t" not in str(event.to_json())
    assert monitor.events(obs(2, result={"token": 5}, output_schema=schema)) == []


def test_errors_and_cold_starts_do_not_feed_the_duration_or_shape_baselines():
    monitor = AnomalyMonitor(Detectors(duration=DurationDetector(warmup=5)), LogPatterns([]))
    for n in range(20):
        monitor.observe(obs(n))
    assert monitor.observe(obs(30, run_ms=5000, is_cold=True)) == []
    failing = Observation("ns", "a", "0.0.1", "f" * 32, 31_000, 5000, True, False, {"error": "x"})
    assert [a.type for a in monitor.observe(failing)] == []


def test_invalid_output_schemas_are_refused_at_deploy():
    check_output_schema({"type": "object"})
    with pytest.raises(BadRequestError, match="output-schema"):
        check_output_schema({"type": "nope"})
    with pytest.raises(BadRequestError, match="output-schema"):
        check_output_schema("object")
