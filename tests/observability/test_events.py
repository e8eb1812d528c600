"""The one security event model: JSON round trip, severities, the egress hook."""

from __future__ import annotations

import pytest

from stockade.observability.events import (
    DENIAL_KINDS,
    EVENT_TYPES,
    EventType,
    NullEventSink,
    SecurityEvent,
    Severity,
    egress_denied,
)


def test_an_event_survives_its_json_form():
    event = SecurityEvent(
        type=EventType.SANDBOX_TAMPER,
        severity=Severity.CRITICAL,
        time_ms=123,
        namespace="guest",
        action="pkg/a",
        activation_id="a" * 32,
        subject="guest",
        source="invoker",
        details={"finding": "code_modified", "n": [1, 2]},
    )
    doc = event.to_json()
    assert doc["type"] == "sandbox.tamper"
    assert doc["severity"] == "critical"
    assert SecurityEvent.from_json(doc) == event


def test_event_ids_are_random_and_distinct():
    a = SecurityEvent(EventType.AUTH_FAILED, Severity.LOW, 1)
    b = SecurityEvent(EventType.AUTH_FAILED, Severity.LOW, 1)
    assert len(a.event_id) == 32
    assert a.event_id != b.event_id


def test_severities_order_and_parse():
    assert Severity.CRITICAL > Severity.HIGH > Severity.MEDIUM > Severity.LOW > Severity.INFO
    assert Severity.parse("High") is Severity.HIGH
    with pytest.raises(ValueError, match="unknown severity"):
        Severity.parse("urgent")
    with pytest.raises(ValueError, match="unknown severity"):
        Severity.parse(3)


def test_every_denial_kind_the_issue_names_has_an_event_type():
    assert set(DENIAL_KINDS.values()) == {
        "auth",
        "authorization",
        "egress",
        "sealed_parameters",
        "schema",
        "rate_limit",
    }
    assert set(DENIAL_KINDS) <= EVENT_TYPES


def test_the_egress_hook_builds_a_high_severity_event_without_payloads():
    event = egress_denied(
        namespace="guest", action="a", activation_id="b" * 32, host="evil.example" + "x" * 400, port=443, time_ms=5
    )
    assert event.type is EventType.EGRESS_DENIED
    assert event.severity is Severity.HIGH
    assert event.details["port"] == 443
    assert len(str(event.details["host"])) == 255
    NullEventSink().emit(event)
