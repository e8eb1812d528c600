"""Monitoring storage on both engines: events, alerts, rules, webhooks, dead letters, activation tags."""

from __future__ import annotations

import pytest

from stockade.domain import Activation, ActivationResponse, ActivationStatus, KeyValue
from stockade.errors import ConflictError
from stockade.observability.alerts import Alert
from stockade.observability.events import EventType, SecurityEvent, Severity
from stockade.store import ActivationQuery, AlertQuery, DeadLetter, EventQuery, WebhookRecord


def event(kind=EventType.AUTH_FAILED, *, ns="guest", at=1000, severity=Severity.MEDIUM, **kw):
    return SecurityEvent(type=kind, severity=severity, time_ms=at, namespace=ns, **kw)


async def test_events_round_trip_and_filter_by_namespace_type_time_and_severity(store):
    await store.put_events(
        [
            event(at=1000, subject="k1", details={"reason": "invalid key", "n": 1}),
            event(EventType.ANOMALY_DURATION, at=2000, action="pkg/a", activation_id="a" * 32),
            event(EventType.ANOMALY_LOG_PATTERN, at=3000, severity=Severity.CRITICAL),
            event(EventType.SANDBOX_TAMPER, ns="other", at=4000, severity=Severity.CRITICAL),
            event(EventType.AUTH_FAILED, ns="", at=5000),
        ]
    )
    everything = await store.list_events(EventQuery(namespaces=("guest",)))
    assert [e.time_ms for e in everything] == [3000, 2000, 1000]
    first = everything[-1]
    assert first.subject == "k1"
    assert first.details == {"reason": "invalid key", "n": 1}
    assert everything[1].action == "pkg/a"
    assert everything[1].activation_id == "a" * 32

    anomalies = await store.list_events(EventQuery(namespaces=("guest",), types=("anomaly.*",)))
    assert {e.type for e in anomalies} == {EventType.ANOMALY_DURATION, EventType.ANOMALY_LOG_PATTERN}
    exact = await store.list_events(EventQuery(namespaces=("guest",), types=("auth.failed", "anomaly.duration")))
    assert [e.time_ms for e in exact] == [2000, 1000]
    assert [
        e.time_ms for e in await store.list_events(EventQuery(namespaces=("guest",), since_ms=1500, upto_ms=2500))
    ] == [2000]
    severe = await store.list_events(EventQuery(namespaces=("guest",), min_severity=int(Severity.HIGH)))
    assert [e.type for e in severe] == [EventType.ANOMALY_LOG_PATTERN]
    with_platform = await store.list_events(EventQuery(namespaces=("guest", ""), limit=2))
    assert [e.time_ms for e in with_platform] == [5000, 3000]
    assert await store.list_events(EventQuery(namespaces=())) == []


async def test_alerts_are_listed_newest_first_per_namespace(store):
    def alert(ident, ns, last, severity=Severity.HIGH):
        return Alert(ident, ns, "rule", severity, "sandbox.tamper", "a", "k", "t", 1, last, last, ("e1",), ("x",))

    await store.put_alerts([alert("a1", "guest", 10), alert("a2", "guest", 20, Severity.LOW), alert("a3", "other", 30)])
    found = await store.list_alerts(AlertQuery(namespace="guest"))
    assert [a.alert_id for a in found] == ["a2", "a1"]
    assert found[1] == alert("a1", "guest", 10)
    assert [a.alert_id for a in await store.list_alerts(AlertQuery("guest", min_severity=int(Severity.MEDIUM)))] == [
        "a1"
    ]
    assert [a.alert_id for a in await store.list_alerts(AlertQuery("guest", since_ms=15))] == ["a2"]


async def test_alert_rules_are_replaced_listed_and_deleted(store):
    await store.put_alert_rule("guest", "r1", {"id": "r1", "types": ["auth.*"]}, 1)
    await store.put_alert_rule("guest", "r1", {"id": "r1", "types": ["sandbox.*"]}, 2)
    await store.put_alert_rule("other", "r2", {"id": "r2", "types": ["anomaly.*"]}, 3)
    assert await store.list_alert_rules("guest") == [("guest", {"id": "r1", "types": ["sandbox.*"]})]
    assert [ns for ns, _ in await store.list_alert_rules()] == ["guest", "other"]
    assert await store.delete_alert_rule("guest", "r1") is True
    assert await store.delete_alert_rule("guest", "r1") is False


async def test_webhooks_keep_the_sealed_secret_and_refuse_duplicate_ids(store):
    hook = WebhookRecord("w1", "guest", "https://hooks.example/x", {"v": 1, "ct": "abc"}, 2, 100, "guest")
    await store.put_webhook(hook)
    with pytest.raises(ConflictError):
        await store.put_webhook(hook)
    await store.put_webhook(WebhookRecord("w2", "other", "https://b.example/", {"v": 1}, 0, 200, "other"))
    assert await store.list_webhooks("guest") == [hook]
    assert [w.id for w in await store.list_webhooks()] == ["w1", "w2"]
    assert "abc" not in repr(hook)
    assert await store.delete_webhook("other", "w1") is False
    assert await store.delete_webhook("guest", "w1") is True


async def test_dead_letters_are_listed_per_namespace(store):
    letter = DeadLetter("d1", "guest", "w1", "a1", 5, "HTTP 500", 10, {"alert": {"id": "a1"}})
    await store.put_dead_letter(letter)
    await store.put_dead_letter(DeadLetter("d2", "other", "w2", "a2", 5, "timeout", 20, {}))
    assert await store.list_dead_letters("guest") == [letter]


def activation(ident, start, tags=None):
    annotations = (KeyValue("path", "guest/a"),) + ((KeyValue("tags", tags),) if tags is not None else ())
    return Activation(
        ident, "guest", "guest", "a", "0.0.1", start, start + 1, ActivationResponse(ActivationStatus.SUCCESS, {}),
        annotations=annotations, entity_path="guest/a",
    )  # fmt: skip


async def test_activations_can_be_listed_and_counted_by_tag(store):
    await store.put_activations(
        [
            activation("1" * 32, 1, ["payments", "edge"]),
            activation("2" * 32, 2, ["payments"]),
            activation("3" * 32, 3),
            activation("4" * 32, 4, ["Not Valid!"]),
        ]
    )
    found = await store.list_activations(ActivationQuery("guest", tag="payments"))
    assert [a.activation_id for a in found] == ["2" * 32, "1" * 32]
    assert await store.count_activations(ActivationQuery("guest", tag="edge")) == 1
    assert await store.count_activations(ActivationQuery("other", tag="edge")) == 0
    assert await store.count_activations(ActivationQuery("guest")) == 4
