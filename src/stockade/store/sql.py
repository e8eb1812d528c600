"""The Store implemented once over SQL; each engine supplies a ``Driver`` (sqlite.py, postgres.py).

SQL here uses ``?`` placeholders and only portable constructs; a driver rewrites placeholders
for its engine. Every value travels as a bound parameter: no SQL is built from input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from stockade.domain import JSON, Activation, Namespace, kv_get
from stockade.observability.tags import TAGS_ANNOTATION, tags_of
from stockade.store.access import SqlAccess
from stockade.store.base import (
    ActionVersionRef,
    ActivationQuery,
    AdvisoryRecord,
    AdvisorySync,
    AdvisoryUpsert,
    Collection,
    Delete,
    KeyRecord,
    Put,
    StoredEntity,
    Write,
)
from stockade.store.codec import activation_from_doc, activation_to_doc
from stockade.store.console import SqlConsole
from stockade.store.driver import (
    Driver,
    MigrationLocking,
    Row,
    Step,
    already_exists,
    concurrent_modification,
)
from stockade.store.gateway import SqlGateway
from stockade.store.journal import AuditingDriver, SqlJournal
from stockade.store.keymaterial import SqlKeyMaterial
from stockade.store.logins import SqlLogins
from stockade.store.monitoring import SqlMonitoring

__all__ = [
    "Driver",
    "MigrationLocking",
    "Row",
    "SqlStore",
    "Step",
    "already_exists",
    "concurrent_modification",
]


def _dumps(doc: JSON) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


# Bound parameters per IN (...) list: well under SQLite's and PostgreSQL's limits.
_IN_CHUNK = 500


def _placeholders(count: int) -> str:
    """``?, ?, ?`` for an IN list: only the count shapes the SQL, never a value."""
    return ", ".join("?" * count)


def _digest(doc: JSON) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _package_of(name: str) -> str:
    return name.split("/", 1)[0] if "/" in name else ""


class SqlStore(SqlKeyMaterial, SqlAccess, SqlMonitoring, SqlGateway, SqlLogins, SqlConsole, SqlJournal):
    """Store over a Driver."""

    def __init__(self, driver: Driver) -> None:
        self._raw = driver
        # Every write goes through the auditing wrapper: a request's change commits with its entry.
        self._db: Driver = AuditingDriver(driver)

    async def open(self) -> None:
        """Connect and migrate."""
        await self._db.connect()
        await self._migrate()

    async def close(self) -> None:
        """Close the driver."""
        await self._db.close()

    async def _migrate(self) -> None:
        # Invariant: with a driver that can lock, processes migrate one at a time, and each reads
        # the schema version only after the previous one committed its migrations.
        if isinstance(self._raw, MigrationLocking):
            async with self._raw.migration_lock():
                await self._apply_migrations()
        else:
            await self._apply_migrations()

    async def _apply_migrations(self) -> None:
        await self._db.executescript(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)"
        )
        row = await self._db.fetchone("SELECT MAX(version) FROM schema_migrations")
        current = int(row[0]) if row and row[0] is not None else 0
        folder = resources.files("stockade.store") / "migrations" / self._db.dialect
        scripts = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
        for script in scripts:
            version = int(script.name.split("_", 1)[0])
            if version <= current:
                continue
            # Invariant: a migration and its bookkeeping row commit together or not at all.
            text = script.read_text()
            await self._db.executescript(
                f"{text}\nINSERT INTO schema_migrations (version, applied_ms) VALUES ({version}, 0);"
            )

    # Namespaces and keys.

    async def create_namespace(self, namespace: Namespace) -> None:
        """Create a namespace."""
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO namespaces (name, uuid, created) VALUES (?, ?, ?)",
                    (namespace.name, namespace.uuid, namespace.created),
                )
            ]
        )

    async def get_namespace(self, name: str) -> Namespace | None:
        """One namespace."""
        row = await self._db.fetchone("SELECT name, uuid, created FROM namespaces WHERE name = ?", (name,))
        return Namespace(row[0], row[1], int(row[2])) if row else None

    async def list_namespaces(self) -> list[Namespace]:
        """All namespaces by name."""
        rows = await self._db.fetchall("SELECT name, uuid, created FROM namespaces ORDER BY name")
        return [Namespace(r[0], r[1], int(r[2])) for r in rows]

    async def put_key(self, key: KeyRecord) -> None:
        """Store a key and its subject."""
        await self._db.transaction(
            [
                # ON CONFLICT, not WHERE NOT EXISTS: racing first uses must not conflict.
                Step(
                    "INSERT INTO subjects (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                    (key.subject, key.created),
                ),
                Step(
                    "INSERT INTO api_keys (uuid, key_hash, subject, namespace, created, revoked) "
                    "VALUES (?, ?, ?, ?, ?, NULL)",
                    (key.uuid, key.key_hash, key.subject, key.namespace, key.created),
                ),
            ]
        )

    async def get_key(self, uuid: str) -> KeyRecord | None:
        """One key by uuid."""
        row = await self._db.fetchone(
            "SELECT uuid, key_hash, subject, namespace, created, revoked FROM api_keys WHERE uuid = ?", (uuid,)
        )
        if row is None:
            return None
        return KeyRecord(row[0], bytes(row[1]), row[2], row[3], int(row[4]), None if row[5] is None else int(row[5]))

    async def revoke_key(self, uuid: str, when_ms: int) -> bool:
        """Revoke a key."""
        counts = await self._db.transaction(
            [
                Step("UPDATE api_keys SET revoked = ? WHERE uuid = ? AND revoked IS NULL", (when_ms, uuid)),
                # Every process watches the epoch and drops its cached keys when it moves.
                Step("UPDATE security_epoch SET epoch = epoch + 1 WHERE id = 1"),
            ]
        )
        return counts[0] == 1

    # Entities.

    async def get_entity(self, namespace: str, name: str) -> StoredEntity | None:
        """One entity in any collection."""
        row = await self._db.fetchone(
            "SELECT collection, revision, updated, doc FROM entities WHERE namespace = ? AND name = ?",
            (namespace, name),
        )
        if row is None:
            return None
        return StoredEntity(namespace, name, row[0], int(row[1]), int(row[2]), json.loads(row[3]))

    def _list_filter(self, namespace: str, collection: Collection, package: str | None) -> tuple[str, tuple[Any, ...]]:
        if package is None:
            return "namespace = ? AND collection = ?", (namespace, collection)
        return "namespace = ? AND collection = ? AND package = ?", (namespace, collection, package)

    async def list_entities(
        self, namespace: str, collection: Collection, *, package: str | None, skip: int, limit: int
    ) -> list[StoredEntity]:
        """A page of a collection, newest first."""
        where, args = self._list_filter(namespace, collection, package)
        rows = await self._db.fetchall(
            f"SELECT name, revision, updated, doc FROM entities WHERE {where} "  # noqa: S608 - fixed fragments only
            "ORDER BY updated DESC, name LIMIT ? OFFSET ?",
            (*args, limit, skip),
        )
        return [StoredEntity(namespace, r[0], collection, int(r[1]), int(r[2]), json.loads(r[3])) for r in rows]

    async def count_entities(self, namespace: str, collection: Collection, *, package: str | None) -> int:
        """Size of a collection."""
        where, args = self._list_filter(namespace, collection, package)
        row = await self._db.fetchone(f"SELECT COUNT(*) FROM entities WHERE {where}", args)  # noqa: S608
        return int(row[0]) if row else 0

    async def apply(self, writes: Sequence[Write]) -> list[int]:
        """Atomic conditional writes."""
        steps: list[Step] = []
        revisions: list[int] = []
        for write in writes:
            if isinstance(write, Put):
                body = _dumps(write.doc)
                if write.expected_revision is None:
                    steps.append(
                        Step(
                            "INSERT INTO entities (namespace, name, package, collection, revision, updated, doc) "
                            "VALUES (?, ?, ?, ?, 1, ?, ?)",
                            (
                                write.namespace,
                                write.name,
                                _package_of(write.name),
                                write.collection,
                                write.updated,
                                body,
                            ),
                        )
                    )
                    revisions.append(1)
                else:
                    steps.append(
                        Step(
                            "UPDATE entities SET revision = revision + 1, updated = ?, doc = ?, collection = ? "
                            "WHERE namespace = ? AND name = ? AND revision = ?",
                            (
                                write.updated,
                                body,
                                write.collection,
                                write.namespace,
                                write.name,
                                write.expected_revision,
                            ),
                            expect_rows=1,
                        )
                    )
                    revisions.append(write.expected_revision + 1)
            else:
                assert isinstance(write, Delete)
                steps.append(
                    Step(
                        "DELETE FROM entities WHERE namespace = ? AND name = ? AND revision = ?",
                        (write.namespace, write.name, write.expected_revision),
                        expect_rows=1,
                    )
                )
                revisions.append(0)
        await self._db.transaction(steps)
        return revisions

    async def put_code(self, digest: str, code: bytes) -> None:
        """Content-addressed code. A stored blob is rewritten, not kept: one edited in the database
        under its digest is healed by the next deploy of the genuine code."""
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO code_blobs (digest, data) VALUES (?, ?) "
                    "ON CONFLICT (digest) DO UPDATE SET data = excluded.data",
                    (digest, code),
                )
            ]
        )

    async def get_code(self, digest: str) -> bytes | None:
        """Code by digest."""
        row = await self._db.fetchone("SELECT data FROM code_blobs WHERE digest = ?", (digest,))
        return bytes(row[0]) if row else None

    async def put_action_version(
        self, namespace: str, name: str, version: str, doc: dict[str, JSON], created: int
    ) -> None:
        """Record a version of an action."""
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO action_versions (namespace, name, version, created, doc) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (namespace, name, version) DO UPDATE SET created = excluded.created, doc = excluded.doc",
                    (namespace, name, version, created, _dumps(doc)),
                ),
            ]
        )

    async def get_action_version(self, namespace: str, name: str, version: str) -> dict[str, JSON] | None:
        """One recorded version."""
        row = await self._db.fetchone(
            "SELECT doc FROM action_versions WHERE namespace = ? AND name = ? AND version = ?",
            (namespace, name, version),
        )
        return json.loads(row[0]) if row else None

    # Activations.

    async def put_activations(self, activations: Sequence[Activation]) -> None:
        """Insert a batch of records."""
        if not activations:
            return
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO activations (activation_id, namespace, entity_path, start_ms, doc) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (a.activation_id, a.namespace, a.entity_path, a.start, _dumps(activation_to_doc(a))),
                )
                for a in activations
            ]
            + [
                Step(
                    "INSERT INTO activation_tags (namespace, tag, start_ms, activation_id) VALUES (?, ?, ?, ?)",
                    (a.namespace, tag, a.start, a.activation_id),
                )
                for a in activations
                for tag in tags_of(kv_get(a.annotations, TAGS_ANNOTATION))
            ]
        )

    async def get_activation(self, namespace: str, activation_id: str) -> Activation | None:
        """One record of ``namespace``."""
        row = await self._db.fetchone(
            "SELECT doc FROM activations WHERE activation_id = ? AND namespace = ?", (activation_id, namespace)
        )
        return activation_from_doc(json.loads(row[0])) if row else None

    def _activation_filter(self, query: ActivationQuery) -> tuple[str, tuple[Any, ...]]:
        clauses = ["namespace = ?"]
        args: list[Any] = [query.namespace]
        if query.entity_path is not None:
            clauses.append("entity_path = ?")
            args.append(query.entity_path)
        if query.since_ms is not None:
            clauses.append("start_ms >= ?")
            args.append(query.since_ms)
        if query.upto_ms is not None:
            clauses.append("start_ms <= ?")
            args.append(query.upto_ms)
        if query.tag is not None:
            clauses.append(
                "activation_id IN (SELECT activation_id FROM activation_tags WHERE namespace = ? AND tag = ?)"
            )
            args.extend((query.namespace, query.tag))
        return " AND ".join(clauses), tuple(args)

    async def list_activations(self, query: ActivationQuery) -> list[Activation]:
        """A page of records, newest first."""
        where, args = self._activation_filter(query)
        rows = await self._db.fetchall(
            f"SELECT doc FROM activations WHERE {where} "  # noqa: S608 - fixed fragments only
            "ORDER BY start_ms DESC, activation_id LIMIT ? OFFSET ?",
            (*args, query.limit, query.skip),
        )
        return [activation_from_doc(json.loads(r[0])) for r in rows]

    async def count_activations(self, query: ActivationQuery) -> int:
        """Matching records."""
        where, args = self._activation_filter(query)
        row = await self._db.fetchone(f"SELECT COUNT(*) FROM activations WHERE {where}", args)  # noqa: S608
        return int(row[0]) if row else 0

    # Deploy gate: advisories, scan reports, scan policies.

    async def upsert_advisories(self, advisories: Sequence[AdvisoryRecord], imported_ms: int) -> AdvisoryUpsert:
        """Insert new and changed advisories with their package keys, all in one transaction."""
        latest: dict[str, AdvisoryRecord] = {a.id: a for a in advisories}  # a repeated id keeps the last
        ids = list(latest)
        stored: dict[str, str] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            rows = await self._db.fetchall(
                f"SELECT id, digest FROM advisories WHERE id IN ({_placeholders(len(chunk))})",  # noqa: S608 - placeholders only
                tuple(chunk),
            )
            stored.update({r[0]: r[1] for r in rows})
        created: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        steps: list[Step] = []
        for advisory_id, advisory in latest.items():
            digest = _digest(advisory.doc)
            if stored.get(advisory_id) == digest:
                unchanged.append(advisory_id)
                continue
            (updated if advisory_id in stored else created).append(advisory_id)
            steps.append(
                Step(
                    "INSERT INTO advisories (id, modified, digest, imported, doc) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, digest = excluded.digest, "
                    "imported = excluded.imported, doc = excluded.doc",
                    (advisory_id, advisory.modified, digest, imported_ms, _dumps(advisory.doc)),
                )
            )
            steps.append(Step("DELETE FROM advisory_packages WHERE advisory_id = ?", (advisory_id,)))
            steps.extend(
                Step(
                    "INSERT INTO advisory_packages (ecosystem, name, advisory_id) VALUES (?, ?, ?) "
                    "ON CONFLICT (ecosystem, name, advisory_id) DO NOTHING",
                    (ecosystem, name, advisory_id),
                )
                for ecosystem, name in dict.fromkeys(advisory.packages)
            )
        if steps:
            await self._db.transaction(steps)
        return AdvisoryUpsert(tuple(created), tuple(updated), tuple(unchanged))

    async def find_advisories(self, ecosystem: str, names: Sequence[str]) -> list[dict[str, JSON]]:
        """Advisory documents by package, each once, ordered by id."""
        unique = list(dict.fromkeys(names))
        docs: dict[str, dict[str, JSON]] = {}
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            sql = (
                "SELECT DISTINCT a.id, a.doc FROM advisory_packages p JOIN advisories a ON a.id = p.advisory_id "  # noqa: S608 - placeholders only
                f"WHERE p.ecosystem = ? AND p.name IN ({_placeholders(len(chunk))})"
            )
            rows = await self._db.fetchall(sql, (ecosystem, *chunk))
            docs.update({r[0]: json.loads(r[1]) for r in rows})
        return [docs[key] for key in sorted(docs)]

    async def put_advisory_sync(self, record: AdvisorySync) -> None:
        """Record (replace) an ecosystem's last sync."""
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO advisory_sync (ecosystem, synced, source, etag, last_modified, advisories) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ecosystem) DO UPDATE SET synced = excluded.synced, "
                    "source = excluded.source, etag = excluded.etag, last_modified = excluded.last_modified, "
                    "advisories = excluded.advisories",
                    (
                        record.ecosystem,
                        record.synced,
                        record.source,
                        record.etag,
                        record.last_modified,
                        record.advisories,
                    ),
                )
            ]
        )

    async def list_advisory_sync(self) -> list[AdvisorySync]:
        """Every ecosystem's last sync."""
        rows = await self._db.fetchall(
            "SELECT ecosystem, synced, source, etag, last_modified, advisories FROM advisory_sync ORDER BY ecosystem"
        )
        return [AdvisorySync(str(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5])) for r in rows]

    async def advisory_coverage(self) -> dict[str, tuple[int, int | None]]:
        """Ecosystem → (stored advisories, newest of its last sync and last import, in ms)."""
        rows = await self._db.fetchall(
            "SELECT p.ecosystem, COUNT(DISTINCT p.advisory_id), MAX(a.imported) "
            "FROM advisory_packages p JOIN advisories a ON a.id = p.advisory_id GROUP BY p.ecosystem"
        )
        out: dict[str, tuple[int, int | None]] = {
            str(r[0]): (int(r[1]), int(r[2]) if r[2] is not None else None) for r in rows
        }
        for sync in await self.list_advisory_sync():
            count, last = out.get(sync.ecosystem, (0, None))
            out[sync.ecosystem] = (count, max(last or 0, sync.synced))
        return out

    async def count_advisories(self) -> int:
        """Stored advisories."""
        row = await self._db.fetchone("SELECT COUNT(*) FROM advisories")
        return int(row[0]) if row else 0

    async def put_scan_report(
        self, namespace: str, name: str, version: str, doc: dict[str, JSON], created: int
    ) -> None:
        """Keep one version's report."""
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO scan_reports (namespace, name, version, created, doc) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (namespace, name, version) DO UPDATE SET created = excluded.created, doc = excluded.doc",
                    (namespace, name, version, created, _dumps(doc)),
                )
            ]
        )

    async def get_scan_report(self, namespace: str, name: str, version: str) -> dict[str, JSON] | None:
        """One version's report."""
        row = await self._db.fetchone(
            "SELECT doc FROM scan_reports WHERE namespace = ? AND name = ? AND version = ?", (namespace, name, version)
        )
        return json.loads(row[0]) if row else None

    async def list_deployed_action_versions(
        self, *, after: tuple[str, str] | None = None, limit: int = 500
    ) -> list[ActionVersionRef]:
        """A page of current action versions in (namespace, name) order (keyset pagination)."""
        if after is None:
            rows = await self._db.fetchall(
                "SELECT namespace, name, doc FROM entities WHERE collection = 'actions' ORDER BY namespace, name LIMIT ?",
                (limit,),
            )
        else:
            rows = await self._db.fetchall(
                "SELECT namespace, name, doc FROM entities WHERE collection = 'actions' "
                "AND (namespace > ? OR (namespace = ? AND name > ?)) ORDER BY namespace, name LIMIT ?",
                (after[0], after[0], after[1], limit),
            )
        return [ActionVersionRef(r[0], r[1], str(json.loads(r[2]).get("version"))) for r in rows]

    async def get_scan_policy(self, namespace: str) -> dict[str, JSON] | None:
        """The override, if set."""
        row = await self._db.fetchone("SELECT doc FROM scan_policies WHERE namespace = ?", (namespace,))
        return json.loads(row[0]) if row else None

    async def put_scan_policy(self, namespace: str, doc: dict[str, JSON], updated: int) -> None:
        """Set the override."""
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO scan_policies (namespace, updated, doc) VALUES (?, ?, ?) "
                    "ON CONFLICT (namespace) DO UPDATE SET updated = excluded.updated, doc = excluded.doc",
                    (namespace, updated, _dumps(doc)),
                )
            ]
        )

    async def delete_scan_policy(self, namespace: str) -> bool:
        """Drop the override."""
        counts = await self._db.transaction([Step("DELETE FROM scan_policies WHERE namespace = ?", (namespace,))])
        return counts[0] == 1
