"""Storage of web-console sessions and alert acknowledgments (the Store's console part).

``SqlConsole`` is mixed into ``SqlStore``. A session row is keyed by the SHA-256 of the session
token (the token itself is never stored), so a copy of the database cannot be replayed as a
cookie. Sessions live in the store, not in one process, so every controller of a scale-out
deployment honours the same sign-in, sign-out and expiry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, final

from stockade.domain import JSON
from stockade.observability.alerts import Alert
from stockade.observability.events import SecurityEvent
from stockade.store.driver import Driver, Step

__all__ = ["AlertAck", "ConsoleSession", "ConsoleStore", "SqlConsole"]


@final
@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in console user: who, through which credential, until when."""

    token_hash: str  # hex SHA-256 of the cookie's token
    namespace: str
    subject: str
    key_uuid: str  # "" for JWT sessions
    kind: str  # "key" or "jwt"
    role: str | None  # JWT sessions: the issuer's role
    scope: tuple[str, ...] | None  # JWT sessions: the token's scope
    created: int
    expires: int


@final
@dataclass(frozen=True, slots=True)
class AlertAck:
    """Someone acknowledged an alert."""

    namespace: str
    alert_id: str
    subject: str
    at: int
    note: str


class ConsoleStore(Protocol):
    """Console sessions and alert acknowledgments."""

    async def put_console_session(self, session: ConsoleSession) -> None:
        """Insert a session."""

    async def get_console_session(self, token_hash: str) -> ConsoleSession | None:
        """The session with this token hash, or None."""

    async def delete_console_session(self, token_hash: str) -> bool:
        """Remove a session; False if there was none."""

    async def purge_console_sessions(self, now_ms: int) -> int:
        """Remove expired sessions; how many."""

    async def put_alert_ack(self, ack: AlertAck) -> bool:
        """Record an acknowledgment; False if the alert was already acknowledged (the first stands)."""

    async def list_alert_acks(self, namespace: str, alert_ids: Sequence[str]) -> dict[str, AlertAck]:
        """Acknowledgments of these alerts, by alert id."""

    async def get_alert(self, namespace: str, alert_id: str) -> Alert | None:
        """One alert of ``namespace``, or None."""

    async def get_events_by_id(self, namespaces: Sequence[str], event_ids: Sequence[str]) -> list[SecurityEvent]:
        """The events with these ids in these namespaces (an alert's evidence), newest first."""


def _in(values: Sequence[Any]) -> str:
    """``?, ?, ?`` for an IN list: only the count shapes the SQL, never a value."""
    return ", ".join("?" * len(values))


class SqlConsole:
    """ConsoleStore over the SQL driver of the class it is mixed into."""

    _db: Driver

    async def put_console_session(self, session: ConsoleSession) -> None:
        """Insert one session."""
        doc: dict[str, JSON] = {"role": session.role, "scope": None if session.scope is None else list(session.scope)}
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO console_sessions (token_hash, namespace, subject, key_uuid, kind, doc, created, expires) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        session.token_hash,
                        session.namespace,
                        session.subject,
                        session.key_uuid,
                        session.kind,
                        json.dumps(doc, separators=(",", ":")),
                        session.created,
                        session.expires,
                    ),
                )
            ]
        )

    async def get_console_session(self, token_hash: str) -> ConsoleSession | None:
        """One session by token hash."""
        row = await self._db.fetchone(
            "SELECT token_hash, namespace, subject, key_uuid, kind, doc, created, expires "
            "FROM console_sessions WHERE token_hash = ?",
            (token_hash,),
        )
        if row is None:
            return None
        doc = json.loads(row[5])
        scope = doc.get("scope")
        return ConsoleSession(
            token_hash=row[0],
            namespace=row[1],
            subject=row[2],
            key_uuid=row[3],
            kind=row[4],
            role=doc.get("role"),
            scope=None if scope is None else tuple(str(s) for s in scope),
            created=int(row[6]),
            expires=int(row[7]),
        )

    async def delete_console_session(self, token_hash: str) -> bool:
        """Remove one session."""
        counts = await self._db.transaction([Step("DELETE FROM console_sessions WHERE token_hash = ?", (token_hash,))])
        return counts[0] == 1

    async def purge_console_sessions(self, now_ms: int) -> int:
        """Remove expired sessions."""
        counts = await self._db.transaction([Step("DELETE FROM console_sessions WHERE expires <= ?", (now_ms,))])
        return counts[0]

    async def put_alert_ack(self, ack: AlertAck) -> bool:
        """First acknowledgment wins; later ones change nothing."""
        existing = await self._db.fetchone(
            "SELECT 1 FROM alert_acks WHERE namespace = ? AND alert_id = ?", (ack.namespace, ack.alert_id)
        )
        if existing is not None:
            return False
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO alert_acks (namespace, alert_id, subject, at, note) VALUES (?, ?, ?, ?, ?)",
                    (ack.namespace, ack.alert_id, ack.subject, ack.at, ack.note),
                )
            ]
        )
        return True

    async def list_alert_acks(self, namespace: str, alert_ids: Sequence[str]) -> dict[str, AlertAck]:
        """By alert id."""
        if not alert_ids:
            return {}
        rows = await self._db.fetchall(
            f"SELECT namespace, alert_id, subject, at, note FROM alert_acks "  # noqa: S608 - placeholders only
            f"WHERE namespace = ? AND alert_id IN ({_in(alert_ids)})",
            (namespace, *alert_ids),
        )
        return {r[1]: AlertAck(r[0], r[1], r[2], int(r[3]), r[4]) for r in rows}

    async def get_alert(self, namespace: str, alert_id: str) -> Alert | None:
        """One alert."""
        row = await self._db.fetchone("SELECT doc FROM alerts WHERE namespace = ? AND id = ?", (namespace, alert_id))
        return None if row is None else Alert.from_json(json.loads(row[0]))

    async def get_events_by_id(self, namespaces: Sequence[str], event_ids: Sequence[str]) -> list[SecurityEvent]:
        """Events by id, newest first."""
        if not namespaces or not event_ids:
            return []
        rows = await self._db.fetchall(
            f"SELECT doc FROM security_events WHERE namespace IN ({_in(namespaces)}) "  # noqa: S608 - placeholders only
            f"AND id IN ({_in(event_ids)}) ORDER BY at DESC, id",
            (*namespaces, *event_ids),
        )
        return [SecurityEvent.from_json(json.loads(r[0])) for r in rows]
