"""Console storage on both engines: sessions by token hash, expiry purge, alert acknowledgments,
one alert and its evidence by id."""

from __future__ import annotations

from stockade.observability.alerts import Alert
from stockade.observability.events import EventType, SecurityEvent, Severity
from stockade.store import AlertAck, ConsoleSession


def session(token_hash="a" * 64, *, expires=2000, kind="key", scope=None, role=None):
    return ConsoleSession(token_hash, "guest", "alice", "uuid-1", kind, role, scope, 1000, expires)


async def test_sessions_round_trip_and_are_deleted_and_purged(store):
    await store.put_console_session(session())
    await store.put_console_session(
        session("b" * 64, expires=5000, kind="jwt", scope=("invoke:/guest/*",), role="viewer")
    )
    assert await store.get_console_session("a" * 64) == session()
    jwt = await store.get_console_session("b" * 64)
    assert jwt.scope == ("invoke:/guest/*",)
    assert jwt.role == "viewer"
    assert await store.get_console_session("c" * 64) is None
    assert await store.purge_console_sessions(2000) == 1
    assert await store.get_console_session("a" * 64) is None
    assert await store.delete_console_session("b" * 64) is True
    assert await store.delete_console_session("b" * 64) is False


async def test_the_first_acknowledgment_stands(store):
    assert await store.put_alert_ack(AlertAck("guest", "x1", "alice", 10, "mine")) is True
    assert await store.put_alert_ack(AlertAck("guest", "x1", "mallory", 20, "no, mine")) is False
    assert await store.put_alert_ack(AlertAck("other", "x1", "bob", 30, "")) is True
    acks = await store.list_alert_acks("guest", ["x1", "x2"])
    assert acks == {"x1": AlertAck("guest", "x1", "alice", 10, "mine")}
    assert await store.list_alert_acks("guest", []) == {}


async def test_one_alert_and_its_evidence_by_id_within_the_namespace(store):
    events = [
        SecurityEvent(EventType.SANDBOX_TAMPER, Severity.CRITICAL, 100, "guest", action="fn", event_id="e1"),
        SecurityEvent(EventType.SANDBOX_TAMPER, Severity.CRITICAL, 200, "other", action="fn", event_id="e2"),
    ]
    await store.put_events(events)
    alert = Alert("al1", "guest", "r", Severity.CRITICAL, "sandbox.tamper", "fn", "k", "t", 2, 100, 200, ("e1", "e2"))
    await store.put_alerts([alert])
    assert await store.get_alert("guest", "al1") == alert
    assert await store.get_alert("other", "al1") is None
    found = await store.get_events_by_id(("guest",), ["e1", "e2"])
    assert [e.event_id for e in found] == ["e1"]
    assert await store.get_events_by_id((), ["e1"]) == []
