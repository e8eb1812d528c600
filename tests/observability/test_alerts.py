"""Alert rules (data, validated), the engine's thresholds, windows, dedup and scopes, and signatures."""

from __future__ import annotations

import json

import pytest

from stockade.errors import BadRequestError
from stockade.observability.alerts import (
    Alert,
    AlertEngine,
    AlertRulesError,
    load_alert_rules,
    parse_rule,
    sign_payload,
    verify_signature,
)
from stockade.observability.events import EventType, SecurityEvent, Severity


def event(kind=EventType.AUTH_FAILED, *, at=0, ns="guest", action="", subject="", severity=Severity.MEDIUM, tags=None):
    details = {"tags": tags} if tags is not None else {}
    return SecurityEvent(kind, severity, at, ns, action, "", subject, "test", details)


def engine(*rules, ns_rules=()):
    made = AlertEngine(admin_namespace="admin", platform_rules=list(rules))
    made.set_namespace_rules(ns_rules)
    return made


def test_the_shipped_rules_load_and_cover_every_control():
    rules = load_alert_rules()
    covered = {t for r in rules for t in r.types}
    for kind in ("sandbox.*", "secret.decrypt_failed", "egress.denied", "deploy.blocked", "auth.failed", "anomaly.*"):
        assert kind in covered


def test_a_threshold_rule_fires_when_enough_events_fall_in_the_window():
    rule = parse_rule(
        {"id": "burst", "types": ["auth.failed"], "threshold": 3, "window_s": 10, "group_by": ["namespace", "type"]}
    )
    e = engine(rule)
    assert e.evaluate(event(at=0)) == []
    assert e.evaluate(event(at=20_000)) == []  # the first fell out of the window
    assert e.evaluate(event(at=21_000)) == []
    fired = e.evaluate(event(at=22_000))
    assert len(fired) == 1
    alert = fired[0]
    assert alert.rule_id == "burst"
    assert alert.count == 3
    assert alert.first_ms == 20_000
    assert alert.last_ms == 22_000
    assert alert.namespace == "guest"
    assert alert.key == "guest|auth.failed"


def test_dedup_keeps_one_alert_per_key_per_period_and_counts_the_rest():
    rule = parse_rule({"id": "tamper", "types": ["sandbox.*"], "dedup_s": 60})
    e = engine(rule)
    assert len(e.evaluate(event(EventType.SANDBOX_TAMPER, at=0, action="a"))) == 1
    assert e.evaluate(event(EventType.SANDBOX_TAMPER, at=1000, action="a")) == []
    assert e.evaluate(event(EventType.SANDBOX_TAMPER, at=2000, action="a")) == []
    # Another action is another key.
    assert len(e.evaluate(event(EventType.SANDBOX_TAMPER, at=3000, action="b"))) == 1
    again = e.evaluate(event(EventType.SANDBOX_STRAY_PROCESS, at=61_000, action="a"))
    assert len(again) == 1  # another type is another key: the first of its own
    later = e.evaluate(event(EventType.SANDBOX_TAMPER, at=61_000, action="a"))
    assert len(later) == 1
    assert later[0].count == 3


def test_severity_tags_and_type_globs_filter_events():
    rule = parse_rule(
        {"id": "r", "types": ["anomaly.*"], "min_severity": "high", "tags": ["payments"], "severity": "critical"}
    )
    e = engine(rule)
    assert e.evaluate(event(EventType.ANOMALY_DURATION, severity=Severity.HIGH, tags=["web"])) == []
    assert e.evaluate(event(EventType.ANOMALY_DURATION, severity=Severity.MEDIUM, tags=["payments"])) == []
    assert e.evaluate(event(EventType.AUTH_FAILED, severity=Severity.HIGH, tags=["payments"])) == []
    fired = e.evaluate(event(EventType.ANOMALY_LOG_PATTERN, severity=Severity.HIGH, tags=["payments"]))
    assert [a.severity for a in fired] == [Severity.CRITICAL]
    assert fired[0].tags == ("payments",)


def test_namespace_rules_see_their_namespace_and_the_admin_namespace_sees_all():
    own = parse_rule({"id": "mine", "types": ["auth.failed"]}, "guest")
    admin = parse_rule({"id": "all", "types": ["auth.failed"]}, "admin")
    e = engine(ns_rules=[own, admin])
    assert sorted(a.rule_id for a in e.evaluate(event(ns="guest", at=1))) == ["all", "mine"]
    assert [a.rule_id for a in e.evaluate(event(ns="other", at=2))] == ["all"]
    platform_event = e.evaluate(event(ns="", at=3))
    assert [(a.rule_id, a.namespace) for a in platform_event] == [("all", "admin")]


def test_alerts_survive_their_json_form():
    alert = engine(parse_rule({"id": "r", "types": ["auth.failed"]})).evaluate(event(action="a", tags=["x"]))[0]
    assert Alert.from_json(alert.to_json()) == alert


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"types": ["auth.failed"]}, "'id'"),
        ({"id": "r", "types": []}, "'types'"),
        ({"id": "r", "types": ["Auth Failed"]}, "'types'"),
        ({"id": "r", "types": ["auth.failed"], "threshold": 0}, "'threshold'"),
        ({"id": "r", "types": ["auth.failed"], "window_s": True}, "'window_s'"),
        ({"id": "r", "types": ["auth.failed"], "group_by": ["ip"]}, "'group_by'"),
        ({"id": "r", "types": ["auth.failed"], "severity": "urgent"}, "unknown severity"),
        ({"id": "r", "types": ["auth.failed"], "colour": "red"}, "unknown rule fields"),
        ("rule", "must be an object"),
    ],
)
def test_invalid_rules_are_refused(doc, message):
    with pytest.raises(BadRequestError, match=message):
        parse_rule(doc)


def test_rule_files_replace_the_defaults_and_are_validated(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [{"id": "only", "types": ["egress.denied"]}]}))
    assert [r.id for r in load_alert_rules(path)] == ["only"]
    path.write_text(json.dumps({"rules": [{"id": "a", "types": ["x"]}, {"id": "a", "types": ["y"]}]}))
    with pytest.raises(AlertRulesError, match="unique"):
        load_alert_rules(path)
    path.write_text(json.dumps({"rules": [{"id": "a"}]}))
    with pytest.raises(AlertRulesError, match="alert rule a"):
        load_alert_rules(path)


def test_signatures_verify_and_refuse_tampering_replay_and_wrong_secrets():
    body = b'{"alert":{"id":"1"}}'
    header = sign_payload(b"topsecret-0123456789", body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature(b"topsecret-0123456789", header, body, 1_700_000_100)
    assert not verify_signature(b"topsecret-0123456789", header, body + b" ", 1_700_000_100)
    assert not verify_signature(b"another-secret-000000", header, body, 1_700_000_100)
    assert not verify_signature(b"topsecret-0123456789", header, body, 1_700_000_301)
    assert not verify_signature(b"topsecret-0123456789", "v1=abc", body, 1_700_000_000)
    assert not verify_signature(b"topsecret-0123456789", "t=1,t=2,v1=abc", body, 1)
    # A header with several v1 values (secret rollover) verifies when any of them matches.
    rolled = header + ",v1=" + "0" * 64
    assert verify_signature(b"topsecret-0123456789", rolled, body, 1_700_000_000)
