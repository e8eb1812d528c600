"""The monitoring services: the event pipeline's caps, detection behind the response, gate events."""

from __future__ import annotations

import pytest

from stockade.config import ObservabilitySettings
from stockade.domain import Action, Activation, ActivationResponse, ActivationStatus, EntityPath, Exec, KeyValue
from stockade.observability.alerts import AlertEngine, parse_rule
from stockade.observability.anomaly import AnomalyMonitor
from stockade.observability.events import EventType, SecurityEvent, Severity
from stockade.observability.metrics import Metrics
from stockade.services.alerts import check_webhook_url
from stockade.services.events import EventPipeline
from stockade.services.monitoring import ActivationMonitor, GateEvents, findings_events
from stockade.services.scans import ActionVulnerable, DeployChecked
from stockade.store import EventQuery, open_sqlite_store
from stockade.testing import FrozenClock


class Sink:
    def __init__(self):
        self.events = []

    def emit(self, event):
        self.events.append(event)


@pytest.fixture
async def store(tmp_path):
    made = open_sqlite_store(tmp_path / "db.sqlite")
    await made.open()
    yield made
    await made.close()


def failed_login(at=0, subject="k1"):
    return SecurityEvent(EventType.AUTH_FAILED, Severity.LOW, at, "guest", subject=subject, source="auth")


async def test_the_pipeline_stores_at_most_n_per_key_and_minute_but_counts_and_evaluates_all(store):
    metrics = Metrics()
    rule = parse_rule({"id": "burst", "types": ["auth.failed"], "threshold": 5, "group_by": ["namespace", "type"]})
    pipeline = EventPipeline(store, metrics, FrozenClock(), AlertEngine("admin", [rule]), events_per_minute=3)
    for i in range(6):
        pipeline.emit(failed_login(at=i))
    pipeline.emit(failed_login(at=7, subject="k2"))
    await pipeline.flush()
    stored = await store.list_events(EventQuery(namespaces=("guest",)))
    assert [e.subject for e in stored].count("k1") == 3
    assert [e.subject for e in stored].count("k2") == 1
    assert metrics.value("stockade_security_events_total", {"type": "auth.failed", "severity": "low"}) == 7
    assert metrics.value("stockade_security_events_unstored_total", {"reason": "rate"}) == 3
    assert metrics.value("stockade_alerts_total", {"severity": "low"}) == 1


async def test_a_full_buffer_drops_and_counts_instead_of_growing(store):
    metrics = Metrics()
    pipeline = EventPipeline(store, metrics, FrozenClock(), AlertEngine("admin"), max_buffer=2)
    for i in range(5):
        pipeline.emit(failed_login(at=i))
    assert pipeline.statistics()["buffered"] == 2
    assert metrics.value("stockade_security_events_unstored_total", {"reason": "overflow"}) == 3


def action(name="a", annotations=()):
    return Action(EntityPath("guest", name), Exec("python:3", "def main(a):\n    return {}\n"), annotations=annotations)


def activation(status=ActivationStatus.SUCCESS, logs=(), duration=10):
    return Activation("f" * 32, "guest", "guest", "a", "0.0.1", 1000, 1000 + duration, ActivationResponse(status, {}),
                      logs=logs)  # fmt: skip


def test_metrics_are_counted_at_once_and_detection_waits_for_the_worker():
    metrics, sink = Metrics(), Sink()
    monitor = ActivationMonitor(metrics, sink, AnomalyMonitor())
    tagged = action(annotations=(KeyValue("tags", ["edge"]),))
    monitor.finished(activation(logs=("sh -c 'id'",)), tagged, init_time_ms=3, timed_out=False)
    monitor.finished(activation(ActivationStatus.DEVELOPER_ERROR), tagged, init_time_ms=None, timed_out=True)
    assert metrics.value("stockade_invocations_total", {"kind": "python:3", "status": "success"}) == 1
    assert metrics.value("stockade_sandbox_kills_total", {"reason": "timeout"}) == 1
    assert sink.events == []
    assert monitor.detect_pending() == 2
    assert [e.type for e in sink.events] == [EventType.ANOMALY_LOG_PATTERN]
    assert sink.events[0].details["tags"] == ["edge"]


def test_the_detection_queue_is_bounded():
    monitor = ActivationMonitor(Metrics(), Sink(), AnomalyMonitor(), max_queue=3)
    for _ in range(5):
        monitor.finished(activation(), action(), init_time_ms=None, timed_out=False)
    assert monitor.skipped == 2
    assert monitor.detect_pending() == 3


def test_without_a_detector_nothing_is_queued():
    monitor = ActivationMonitor(Metrics(), Sink(), None)
    monitor.finished(activation(), action(), init_time_ms=None, timed_out=False)
    assert monitor.detect_pending() == 0


def test_integrity_findings_become_one_event_each():
    events = findings_events(
        ["code_modified: x", "entry_replaced: y", "stray_processes: 1 2", "something_new: z"],
        namespace="guest", action="a", activation_id="a" * 32, time_ms=1, tags=(),
    )  # fmt: skip
    assert [e.type for e in events] == [EventType.SANDBOX_TAMPER] * 2 + [EventType.SANDBOX_STRAY_PROCESS] + [
        EventType.SANDBOX_TAMPER
    ]
    assert {e.severity for e in events} == {Severity.CRITICAL}


async def test_gate_decisions_are_counted_and_blocks_overrides_and_vulnerabilities_are_events():
    metrics, sink = Metrics(), Sink()
    gate = GateEvents(metrics, sink, FrozenClock())
    counts = {"critical": 0, "high": 1, "medium": 2}
    for decision in ("passed", "blocked", "accepted"):
        await gate.deploy_checked(DeployChecked("guest", "a", "0.0.1", "guest", decision, counts, ("r f:1",), 5))
    await gate.action_vulnerable(ActionVulnerable("guest", "a", "0.0.1", ("GHSA-1",), 6))
    assert [e.type for e in sink.events] == [
        EventType.DEPLOY_BLOCKED,
        EventType.DEPLOY_RISK_ACCEPTED,
        EventType.ACTION_VULNERABLE,
    ]
    assert metrics.value("stockade_deploy_gate_findings_total", {"severity": "medium", "decision": "passed"}) == 2
    assert metrics.value("stockade_deploy_gate_decisions_total", {"decision": "accepted"}) == 1


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.example/x", True),
        ("https://93.184.215.14/x", True),
        ("https://203.0.113.5/x", False),
        ("http://hooks.example/x", False),
        ("https://192.168.1.1/", False),
        ("https://169.254.169.254/", False),
        ("https://[fd00::1]/", False),
        ("https://a.localhost/", False),
    ],
)
def test_webhook_urls_must_be_public_https_by_default(url, allowed):
    settings = ObservabilitySettings()
    if allowed:
        assert check_webhook_url(url, settings) == url
    else:
        with pytest.raises(Exception, match="url"):
            check_webhook_url(url, settings)
