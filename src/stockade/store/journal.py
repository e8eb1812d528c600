"""The durability journal: pending activations, throttle windows and the audit outbox.

Nothing acknowledged is lost. An activation is journalled (``activations_pending``, its request
sealed by the caller) before its 202 or its blocking run, and its terminal record replaces that
row in one transaction; the first terminal record for an id wins (``ON CONFLICT DO NOTHING``).
Accepted-request counts of the sliding-window throttle ride in the same group commits. An audit
entry for a change is inserted into ``audit_outbox`` inside the change's own transaction (see
``AuditIntent``), then moved into its hash chain by the audit writer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, final

from stockade.domain import JSON, Activation, kv_get
from stockade.observability.tags import TAGS_ANNOTATION, tags_of
from stockade.store.access import AuditRecord
from stockade.store.codec import activation_to_doc
from stockade.store.driver import Driver, Row, Step

__all__ = [
    "AUDIT_INTENT",
    "AuditIntent",
    "AuditingDriver",
    "JournalStore",
    "OutboxEntry",
    "PendingActivation",
    "RateCount",
    "SqlJournal",
]


def _dumps(doc: JSON) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


@final
@dataclass(frozen=True, slots=True)
class PendingActivation:
    """An accepted activation that has no terminal record yet; ``doc`` holds its sealed request."""

    activation_id: str
    namespace: str
    accepted_ms: int
    blocking: bool
    attempts: int
    doc: dict[str, JSON]


@final
@dataclass(frozen=True, slots=True)
class RateCount:
    """Requests of ``kind`` accepted for ``namespace`` during one second."""

    namespace: str
    kind: str
    second: int
    accepted: int


@final
@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An audit entry committed with its change, not yet chained; ``mac`` seals it meanwhile."""

    id: int
    chain: str
    at: int
    entry: dict[str, JSON]
    mac: str


class AuditIntent:
    """The audit entry a changing request will commit with its first change.

    Set by the API edge for the request's task (``AUDIT_INTENT``); the store adds the entry to
    the first transaction that writes a change table, so the change and its entry commit together.
    ``entry()`` is called at that moment (the caller is known by then) and returns the chain,
    time, entry and its outbox MAC.
    """

    def __init__(self, make: Any) -> None:
        self._make = make
        self.committed = False

    def step(self) -> Step | None:
        """The outbox insert for the change being committed, once per request."""
        if self.committed:
            return None
        chain, at, entry, mac = self._make()
        return Step(
            "INSERT INTO audit_outbox (chain, at, entry, mac) VALUES (?, ?, ?, ?)", (chain, at, _dumps(entry), mac)
        )


AUDIT_INTENT: ContextVar[AuditIntent | None] = ContextVar("stockade_audit_intent", default=None)

# Tables whose writes are changes an operator or user asked for (each needs its audit entry).
_CHANGE_TABLES = frozenset(
    {
        "entities",
        "namespaces",
        "api_keys",
        "role_bindings",
        "namespace_policies",
        "secrets",
        "api_routes",
        "namespace_limits",
        "alert_rules",
        "webhooks",
        "scan_policies",
    }
)
_WRITE_RE = re.compile(r"\A\s*(?:INSERT INTO|UPDATE|DELETE FROM)\s+([a-z_]+)", re.IGNORECASE)


def _is_change(steps: Sequence[Step]) -> bool:
    for step in steps:
        match = _WRITE_RE.match(step.sql)
        if match is not None and match.group(1).lower() in _CHANGE_TABLES:
            return True
    return False


class AuditingDriver:
    """A Driver that commits the current request's audit entry inside its first change."""

    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.dialect = inner.dialect

    async def connect(self) -> None:
        """Open connections."""
        await self.inner.connect()

    async def close(self) -> None:
        """Close connections."""
        await self.inner.close()

    async def fetchone(self, sql: str, args: tuple[Any, ...] = ()) -> Row | None:
        """First row or None."""
        return await self.inner.fetchone(sql, args)

    async def fetchall(self, sql: str, args: tuple[Any, ...] = ()) -> list[Row]:
        """All rows."""
        return await self.inner.fetchall(sql, args)

    async def transaction(self, steps: Sequence[Step]) -> list[int]:
        """The inner transaction, plus the audit entry when this is the request's first change."""
        intent = AUDIT_INTENT.get()
        extra = intent.step() if intent is not None and _is_change(steps) else None
        if extra is None:
            return await self.inner.transaction(steps)
        assert intent is not None
        counts = await self.inner.transaction([*steps, extra])
        # Invariant: only a committed transaction marks the entry written; a rolled-back change
        # leaves the intent open, and the edge records the refusal instead.
        intent.committed = True
        return counts[:-1]

    async def executescript(self, script: str) -> None:
        """Run a script."""
        await self.inner.executescript(script)


# Seconds in a sliding window (services/throttle.py's WINDOW_S: the current second and the 60 before).
RATE_WINDOW_S = 61


class JournalStore(Protocol):
    """What the activation journal, the throttle and the audit writer need from the store."""

    async def commit_journal(
        self,
        accepted: Sequence[PendingActivation],
        finished: Sequence[Activation],
        rates: Sequence[RateCount] = (),
        prune_rates_before: int | None = None,
    ) -> None:
        """One transaction: journal ``accepted``, insert ``finished`` records (first terminal record
        wins) and drop their pending rows, add ``rates`` to the throttle windows."""

    async def list_pending_activations(
        self, limit: int = 1000, after: tuple[int, str] | None = None
    ) -> list[PendingActivation]:
        """Accepted activations without a terminal record, oldest first, after (accepted_ms, id)."""

    async def set_pending_attempts(self, activation_id: str, attempts: int) -> None:
        """Count one more run of a pending activation (before it is re-run)."""

    async def take_rate(self, namespace: str, kind: str, second: int, allowed: int) -> bool:
        """Count one request in ``second`` if the window ending there holds fewer than ``allowed``
        (across every process sharing the store); False when it is full."""
        ...

    async def load_rate_windows(self, since_second: int) -> list[RateCount]:
        """Throttle windows from ``since_second`` on."""

    async def list_audit_outbox(self, limit: int = 500) -> list[OutboxEntry]:
        """Audit entries not yet chained, in commit order."""

    async def chain_audit_outbox(self, records: Sequence[AuditRecord], outbox_ids: Sequence[int]) -> None:
        """Append chained entries and delete their outbox rows in one transaction (ConflictError if
        another writer chained them first)."""


class SqlJournal:
    """JournalStore over SQL (mixed into SqlStore)."""

    _db: Driver

    async def commit_journal(
        self,
        accepted: Sequence[PendingActivation],
        finished: Sequence[Activation],
        rates: Sequence[RateCount] = (),
        prune_rates_before: int | None = None,
    ) -> None:
        """Journal, finish and count in one transaction."""
        steps = [
            Step(
                "INSERT INTO activations_pending (activation_id, namespace, accepted_ms, blocking, attempts, doc) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (activation_id) DO NOTHING",
                (p.activation_id, p.namespace, p.accepted_ms, 1 if p.blocking else 0, p.attempts, _dumps(p.doc)),
            )
            for p in accepted
        ]
        for a in finished:
            steps.append(
                Step(
                    "INSERT INTO activations (activation_id, namespace, entity_path, start_ms, doc) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (activation_id) DO NOTHING",
                    (a.activation_id, a.namespace, a.entity_path, a.start, _dumps(activation_to_doc(a))),
                )
            )
            steps.extend(
                Step(
                    "INSERT INTO activation_tags (namespace, tag, start_ms, activation_id) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (namespace, tag, activation_id) DO NOTHING",
                    (a.namespace, tag, a.start, a.activation_id),
                )
                for tag in tags_of(kv_get(a.annotations, TAGS_ANNOTATION))
            )
            steps.append(Step("DELETE FROM activations_pending WHERE activation_id = ?", (a.activation_id,)))
        steps.extend(
            Step(
                "INSERT INTO rate_windows (namespace, kind, second, accepted) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (namespace, kind, second) DO UPDATE SET accepted = rate_windows.accepted + excluded.accepted",
                (r.namespace, r.kind, r.second, r.accepted),
            )
            for r in rates
        )
        if prune_rates_before is not None:
            steps.append(Step("DELETE FROM rate_windows WHERE second < ?", (prune_rates_before,)))
        if steps:
            await self._db.transaction(steps)

    async def list_pending_activations(
        self, limit: int = 1000, after: tuple[int, str] | None = None
    ) -> list[PendingActivation]:
        """Oldest first (keyset pagination)."""
        columns = "SELECT activation_id, namespace, accepted_ms, blocking, attempts, doc FROM activations_pending "
        if after is None:
            rows = await self._db.fetchall(columns + "ORDER BY accepted_ms, activation_id LIMIT ?", (limit,))
        else:
            rows = await self._db.fetchall(
                columns + "WHERE accepted_ms > ? OR (accepted_ms = ? AND activation_id > ?) "
                "ORDER BY accepted_ms, activation_id LIMIT ?",
                (after[0], after[0], after[1], limit),
            )
        return [PendingActivation(r[0], r[1], int(r[2]), bool(r[3]), int(r[4]), json.loads(r[5])) for r in rows]

    async def set_pending_attempts(self, activation_id: str, attempts: int) -> None:
        """Store the attempt count."""
        await self._db.transaction(
            [
                Step(
                    "UPDATE activations_pending SET attempts = ? WHERE activation_id = ?",
                    (attempts, activation_id),
                )
            ]
        )

    async def take_rate(self, namespace: str, kind: str, second: int, allowed: int) -> bool:
        """Atomic across processes: the first step locks the (namespace, kind) sentinel row (second
        -1) until commit, so takers queue and each one's check sees the counts committed before it."""
        counts = await self._db.transaction(
            [
                Step(
                    "INSERT INTO rate_windows (namespace, kind, second, accepted) VALUES (?, ?, -1, 0) "
                    "ON CONFLICT (namespace, kind, second) DO UPDATE SET accepted = rate_windows.accepted",
                    (namespace, kind),
                ),
                Step(
                    "INSERT INTO rate_windows (namespace, kind, second, accepted) SELECT ?, ?, ?, 1 "
                    "WHERE (SELECT COALESCE(SUM(accepted), 0) FROM rate_windows "
                    "WHERE namespace = ? AND kind = ? AND second > ?) < ? "
                    "ON CONFLICT (namespace, kind, second) DO UPDATE SET accepted = rate_windows.accepted + 1",
                    (namespace, kind, second, namespace, kind, second - RATE_WINDOW_S, allowed),
                ),
            ]
        )
        return counts[-1] > 0

    async def load_rate_windows(self, since_second: int) -> list[RateCount]:
        """Recent windows."""
        rows = await self._db.fetchall(
            "SELECT namespace, kind, second, accepted FROM rate_windows WHERE second >= ?", (since_second,)
        )
        return [RateCount(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

    async def list_audit_outbox(self, limit: int = 500) -> list[OutboxEntry]:
        """In commit order."""
        rows = await self._db.fetchall(
            "SELECT id, chain, at, entry, mac FROM audit_outbox ORDER BY id LIMIT ?", (limit,)
        )
        return [OutboxEntry(int(r[0]), r[1], int(r[2]), json.loads(r[3]), r[4]) for r in rows]

    async def chain_audit_outbox(self, records: Sequence[AuditRecord], outbox_ids: Sequence[int]) -> None:
        """Move entries into their chains."""
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO audit_log (chain, seq, at, entry, mac) VALUES (?, ?, ?, ?, ?)",
                    (r.chain, r.seq, r.at, json.dumps(r.entry, sort_keys=True, separators=(",", ":")), r.mac),
                )
                for r in records
            ]
            + [Step("DELETE FROM audit_outbox WHERE id = ?", (i,), expect_rows=1) for i in outbox_ids]
        )
