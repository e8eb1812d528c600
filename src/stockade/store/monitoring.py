"""Storage of security events, alerts, alert rules, webhooks and dead letters (the Store's monitoring half).

``SqlMonitoring`` is mixed into ``SqlStore``. Events and alerts are append-only documents with
the columns their queries filter on; webhook secrets arrive sealed (the vault's stored form).
Events with namespace ``""`` belong to the platform.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, final

from stockade.domain import JSON
from stockade.observability.alerts import Alert
from stockade.observability.events import SecurityEvent
from stockade.store.driver import Driver, Step

__all__ = [
    "AlertQuery",
    "DeadLetter",
    "EventQuery",
    "MonitoringStore",
    "SqlMonitoring",
    "WebhookRecord",
]


@final
@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for listing events, newest first."""

    namespaces: tuple[str, ...]  # "" is the platform's
    types: tuple[str, ...] = ()  # exact types, or "area.*" prefixes
    since_ms: int | None = None
    upto_ms: int | None = None
    min_severity: int = 0
    limit: int = 50


@final
@dataclass(frozen=True, slots=True)
class AlertQuery:
    """Filters for listing alerts, newest first."""

    namespace: str
    since_ms: int | None = None
    min_severity: int = 0
    limit: int = 50


@final
@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """A namespace's alert webhook; ``sealed_secret`` is the vault's stored form of the HMAC secret."""

    id: str
    namespace: str
    url: str
    sealed_secret: dict[str, JSON] = field(repr=False)
    min_severity: int
    created: int
    subject: str


@final
@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An alert that could not be delivered to a webhook after every attempt."""

    id: str
    namespace: str
    webhook_id: str
    alert_id: str
    attempts: int
    last_error: str
    at: int
    doc: dict[str, JSON]


class MonitoringStore(Protocol):
    """Events, alerts, rules, webhooks, dead letters."""

    async def put_events(self, events: Sequence[SecurityEvent]) -> None:
        """Append events in one transaction."""

    async def list_events(self, query: EventQuery) -> list[SecurityEvent]:
        """Matching events, newest first."""

    async def put_alerts(self, alerts: Sequence[Alert]) -> None:
        """Append alerts in one transaction."""

    async def list_alerts(self, query: AlertQuery) -> list[Alert]:
        """Matching alerts, newest first."""

    async def put_alert_rule(self, namespace: str, rule_id: str, doc: dict[str, JSON], updated: int) -> None:
        """Create or replace a namespace's rule."""

    async def delete_alert_rule(self, namespace: str, rule_id: str) -> bool:
        """Delete a rule; False if there was none."""

    async def list_alert_rules(self, namespace: str | None = None) -> list[tuple[str, dict[str, JSON]]]:
        """(namespace, rule document) of one namespace, or of all when None."""

    async def put_webhook(self, record: WebhookRecord) -> None:
        """Insert a webhook; ConflictError if the id exists."""

    async def list_webhooks(self, namespace: str | None = None) -> list[WebhookRecord]:
        """Webhooks of one namespace, or all when None, oldest first."""

    async def delete_webhook(self, namespace: str, webhook_id: str) -> bool:
        """Delete a webhook; False if there was none."""

    async def put_dead_letter(self, record: DeadLetter) -> None:
        """Record an undeliverable alert."""

    async def list_dead_letters(self, namespace: str, limit: int = 50) -> list[DeadLetter]:
        """A namespace's dead letters, newest first."""


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _in(values: Sequence[Any]) -> str:
    """``?, ?, ?`` for an IN list: only the count shapes the SQL, never a value."""
    return ", ".join("?" * len(values))


class SqlMonitoring:
    """MonitoringStore over the SQL driver of the class it is mixed into."""

    _db: Driver

    async def put_events(self, events: Sequence[SecurityEvent]) -> None:
        """Append events."""
        if not events:
            return
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO security_events (id, namespace, type, severity, at, doc) VALUES (?, ?, ?, ?, ?, ?)",
                    (e.event_id, e.namespace, e.type.value, int(e.severity), e.time_ms, _dumps(e.to_json())),
                )
                for e in events
            ]
        )

    async def list_events(self, query: EventQuery) -> list[SecurityEvent]:
        """Newest first."""
        if not query.namespaces:
            return []
        clauses = [f"namespace IN ({_in(query.namespaces)})", "severity >= ?"]
        args: list[Any] = [*query.namespaces, query.min_severity]
        if query.types:
            exact = [t for t in query.types if not t.endswith(".*")]
            prefixes = [t[:-1] for t in query.types if t.endswith(".*")]
            alternatives = []
            if exact:
                alternatives.append(f"type IN ({_in(exact)})")
                args.extend(exact)
            for prefix in prefixes:
                # Types are [a-z_.] only (validated by the caller), so LIKE has no wildcard to escape.
                alternatives.append("type LIKE ?")
                args.append(prefix + "%")
            clauses.append("(" + " OR ".join(alternatives) + ")")
        if query.since_ms is not None:
            clauses.append("at >= ?")
            args.append(query.since_ms)
        if query.upto_ms is not None:
            clauses.append("at <= ?")
            args.append(query.upto_ms)
        rows = await self._db.fetchall(
            f"SELECT doc FROM security_events WHERE {' AND '.join(clauses)} "  # noqa: S608 - fixed fragments only
            "ORDER BY at DESC, id LIMIT ?",
            (*args, query.limit),
        )
        return [SecurityEvent.from_json(json.loads(r[0])) for r in rows]

    async def put_alerts(self, alerts: Sequence[Alert]) -> None:
        """Append alerts."""
        if not alerts:
            return
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO alerts (id, namespace, severity, at, doc) VALUES (?, ?, ?, ?, ?)",
                    (a.alert_id, a.namespace, int(a.severity), a.last_ms, _dumps(a.to_json())),
                )
                for a in alerts
            ]
        )

    async def list_alerts(self, query: AlertQuery) -> list[Alert]:
        """Newest first."""
        clauses = ["namespace = ?", "severity >= ?"]
        args: list[Any] = [query.namespace, query.min_severity]
        if query.since_ms is not None:
            clauses.append("at >= ?")
            args.append(query.since_ms)
        rows = await self._db.fetchall(
            f"SELECT doc FROM alerts WHERE {' AND '.join(clauses)} ORDER BY at DESC, id LIMIT ?",  # noqa: S608
            (*args, query.limit),
        )
        return [Alert.from_json(json.loads(r[0])) for r in rows]

    async def put_alert_rule(self, namespace: str, rule_id: str, doc: dict[str, JSON], updated: int) -> None:
        """Create or replace."""
        await self._db.transaction(
            [
                Step("DELETE FROM alert_rules WHERE namespace = ? AND id = ?", (namespace, rule_id)),
                Step(
                    "INSERT INTO alert_rules (namespace, id, updated, doc) VALUES (?, ?, ?, ?)",
                    (namespace, rule_id, updated, _dumps(doc)),
                ),
            ]
        )

    async def delete_alert_rule(self, namespace: str, rule_id: str) -> bool:
        """Delete one rule."""
        counts = await self._db.transaction(
            [Step("DELETE FROM alert_rules WHERE namespace = ? AND id = ?", (namespace, rule_id))]
        )
        return counts[0] == 1

    async def list_alert_rules(self, namespace: str | None = None) -> list[tuple[str, dict[str, JSON]]]:
        """Rules by namespace and id."""
        if namespace is None:
            rows = await self._db.fetchall("SELECT namespace, doc FROM alert_rules ORDER BY namespace, id")
        else:
            rows = await self._db.fetchall(
                "SELECT namespace, doc FROM alert_rules WHERE namespace = ? ORDER BY id", (namespace,)
            )
        return [(r[0], json.loads(r[1])) for r in rows]

    def _webhook(self, row: tuple[Any, ...]) -> WebhookRecord:
        return WebhookRecord(row[0], row[1], row[2], json.loads(row[3]), int(row[4]), int(row[5]), row[6])

    async def put_webhook(self, record: WebhookRecord) -> None:
        """Insert one webhook."""
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO webhooks (id, namespace, url, sealed_secret, min_severity, created, subject) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.id,
                        record.namespace,
                        record.url,
                        _dumps(record.sealed_secret),
                        record.min_severity,
                        record.created,
                        record.subject,
                    ),
                )
            ]
        )

    async def list_webhooks(self, namespace: str | None = None) -> list[WebhookRecord]:
        """Oldest first."""
        cols = "SELECT id, namespace, url, sealed_secret, min_severity, created, subject FROM webhooks"
        if namespace is None:
            rows = await self._db.fetchall(f"{cols} ORDER BY created, id")
        else:
            rows = await self._db.fetchall(f"{cols} WHERE namespace = ? ORDER BY created, id", (namespace,))
        return [self._webhook(r) for r in rows]

    async def delete_webhook(self, namespace: str, webhook_id: str) -> bool:
        """Delete one webhook."""
        counts = await self._db.transaction(
            [Step("DELETE FROM webhooks WHERE namespace = ? AND id = ?", (namespace, webhook_id))]
        )
        return counts[0] == 1

    async def put_dead_letter(self, record: DeadLetter) -> None:
        """Record one."""
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO dead_letters (id, namespace, webhook_id, alert_id, attempts, last_error, at, doc) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.id,
                        record.namespace,
                        record.webhook_id,
                        record.alert_id,
                        record.attempts,
                        record.last_error,
                        record.at,
                        _dumps(record.doc),
                    ),
                )
            ]
        )

    async def list_dead_letters(self, namespace: str, limit: int = 50) -> list[DeadLetter]:
        """Newest first."""
        rows = await self._db.fetchall(
            "SELECT id, namespace, webhook_id, alert_id, attempts, last_error, at, doc FROM dead_letters "
            "WHERE namespace = ? ORDER BY at DESC, id LIMIT ?",
            (namespace, limit),
        )
        return [DeadLetter(r[0], r[1], r[2], r[3], int(r[4]), r[5], int(r[6]), json.loads(r[7])) for r in rows]
