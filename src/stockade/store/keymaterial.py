"""Storage of wrapped data keys and secrets (the Store's key-material half).

Only ciphertext is stored: data keys wrapped by a master key, secret values sealed under a
namespace data key. ``SqlKeyMaterial`` is mixed into ``SqlStore``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Protocol, final

from stockade.domain import JSON
from stockade.store.driver import Driver, Step

__all__ = [
    "DataKeyRecord",
    "DataKeyState",
    "KeyMaterialStore",
    "KeyRecord",
    "SecretAccess",
    "SecretRecord",
    "SqlKeyMaterial",
]

DataKeyState = Literal["active", "retiring", "retired"]


@final
@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key as stored: only the SHA-256 of the secret part."""

    uuid: str
    key_hash: bytes
    subject: str
    namespace: str
    created: int
    revoked: int | None = None


@final
@dataclass(frozen=True, slots=True)
class DataKeyRecord:
    """A namespace data key, wrapped by the master key ``master_key_id``."""

    namespace: str
    key_id: str
    master_key_id: str
    wrapped: bytes
    state: DataKeyState
    created: int


@final
@dataclass(frozen=True, slots=True)
class SecretRecord:
    """One version of a secret; ``sealed`` is the encrypted value's stored form."""

    namespace: str
    name: str
    version: int
    sealed: dict[str, JSON]
    created: int
    subject: str


@final
@dataclass(frozen=True, slots=True)
class SecretAccess:
    """A read of a secret by an activation."""

    namespace: str
    name: str
    version: int
    accessor: str
    activation_id: str
    accessed: int


class KeyMaterialStore(Protocol):
    """Data keys and secrets."""

    async def list_data_keys(self, namespace: str | None = None) -> list[DataKeyRecord]:
        """Data keys of a namespace (all namespaces when None), newest first."""

    async def put_data_key(self, record: DataKeyRecord) -> None:
        """Insert a data key; ConflictError if the id exists."""

    async def rewrap_data_key(self, namespace: str, key_id: str, old_master_id: str, record: DataKeyRecord) -> bool:
        """Replace a wrapped key if it is still wrapped by ``old_master_id``; False if it was not."""

    async def set_data_key_state(self, namespace: str, key_id: str, state: DataKeyState) -> None:
        """Change a data key's state."""

    async def put_secret(self, record: SecretRecord) -> None:
        """Insert a secret version; ConflictError if that version exists (concurrent writer)."""

    async def get_secret(self, namespace: str, name: str, version: int | None = None) -> SecretRecord | None:
        """A version of a secret (the latest when None)."""

    async def list_secrets(self, namespace: str) -> list[SecretRecord]:
        """The latest version of every secret of a namespace, by name."""

    async def list_secret_versions(self, namespace: str, name: str) -> list[SecretRecord]:
        """Every version of one secret, newest first."""

    async def replace_secret_sealed(self, record: SecretRecord, expected: dict[str, JSON]) -> bool:
        """Re-encrypt one version in place if unchanged since read; False otherwise."""

    async def delete_secret(self, namespace: str, name: str) -> int:
        """Delete every version; returns how many."""

    async def record_secret_access(self, accesses: list[SecretAccess]) -> None:
        """Append access records."""

    async def list_secret_access(self, namespace: str, name: str, limit: int = 100) -> list[SecretAccess]:
        """Recent reads of a secret, newest first."""


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


class SqlKeyMaterial:
    """KeyMaterialStore over the SQL driver of the class it is mixed into."""

    _db: Driver

    async def list_data_keys(self, namespace: str | None = None) -> list[DataKeyRecord]:
        """Data keys, newest first."""
        sql = "SELECT namespace, key_id, master_key_id, wrapped, state, created FROM data_keys"
        args: tuple[Any, ...] = ()
        if namespace is not None:
            sql += " WHERE namespace = ?"
            args = (namespace,)
        rows = await self._db.fetchall(sql + " ORDER BY created DESC, key_id", args)
        return [DataKeyRecord(r[0], r[1], r[2], bytes(r[3]), r[4], int(r[5])) for r in rows]

    async def put_data_key(self, record: DataKeyRecord) -> None:
        """Insert a data key."""
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO data_keys (namespace, key_id, master_key_id, wrapped, state, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.namespace,
                        record.key_id,
                        record.master_key_id,
                        record.wrapped,
                        record.state,
                        record.created,
                    ),
                )
            ]
        )

    async def rewrap_data_key(self, namespace: str, key_id: str, old_master_id: str, record: DataKeyRecord) -> bool:
        """Conditional rewrap."""
        counts = await self._db.transaction(
            [
                Step(
                    "UPDATE data_keys SET master_key_id = ?, wrapped = ? "
                    "WHERE namespace = ? AND key_id = ? AND master_key_id = ?",
                    (record.master_key_id, record.wrapped, namespace, key_id, old_master_id),
                )
            ]
        )
        return counts[0] == 1

    async def set_data_key_state(self, namespace: str, key_id: str, state: DataKeyState) -> None:
        """Change state."""
        await self._db.transaction(
            [Step("UPDATE data_keys SET state = ? WHERE namespace = ? AND key_id = ?", (state, namespace, key_id))]
        )

    def _secret(self, row: tuple[Any, ...]) -> SecretRecord:
        return SecretRecord(row[0], row[1], int(row[2]), json.loads(row[3]), int(row[4]), row[5])

    async def put_secret(self, record: SecretRecord) -> None:
        """Insert a version."""
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO secrets (namespace, name, version, sealed, created, subject) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.namespace,
                        record.name,
                        record.version,
                        _dumps(record.sealed),
                        record.created,
                        record.subject,
                    ),
                )
            ]
        )

    async def get_secret(self, namespace: str, name: str, version: int | None = None) -> SecretRecord | None:
        """One version (latest by default)."""
        cols = "SELECT namespace, name, version, sealed, created, subject FROM secrets"
        if version is None:
            row = await self._db.fetchone(
                f"{cols} WHERE namespace = ? AND name = ? ORDER BY version DESC LIMIT 1", (namespace, name)
            )
        else:
            row = await self._db.fetchone(
                f"{cols} WHERE namespace = ? AND name = ? AND version = ?", (namespace, name, version)
            )
        return self._secret(row) if row else None

    async def list_secrets(self, namespace: str) -> list[SecretRecord]:
        """Latest versions by name."""
        rows = await self._db.fetchall(
            "SELECT s.namespace, s.name, s.version, s.sealed, s.created, s.subject FROM secrets s "
            "WHERE s.namespace = ? AND s.version = "
            "(SELECT MAX(v.version) FROM secrets v WHERE v.namespace = s.namespace AND v.name = s.name) "
            "ORDER BY s.name",
            (namespace,),
        )
        return [self._secret(r) for r in rows]

    async def list_secret_versions(self, namespace: str, name: str) -> list[SecretRecord]:
        """All versions, newest first."""
        rows = await self._db.fetchall(
            "SELECT namespace, name, version, sealed, created, subject FROM secrets "
            "WHERE namespace = ? AND name = ? ORDER BY version DESC",
            (namespace, name),
        )
        return [self._secret(r) for r in rows]

    async def replace_secret_sealed(self, record: SecretRecord, expected: dict[str, JSON]) -> bool:
        """Conditional re-encryption of one version."""
        counts = await self._db.transaction(
            [
                Step(
                    "UPDATE secrets SET sealed = ? WHERE namespace = ? AND name = ? AND version = ? AND sealed = ?",
                    (_dumps(record.sealed), record.namespace, record.name, record.version, _dumps(expected)),
                )
            ]
        )
        return counts[0] == 1

    async def delete_secret(self, namespace: str, name: str) -> int:
        """Delete all versions."""
        counts = await self._db.transaction(
            [Step("DELETE FROM secrets WHERE namespace = ? AND name = ?", (namespace, name))]
        )
        return counts[0]

    async def record_secret_access(self, accesses: list[SecretAccess]) -> None:
        """Append reads."""
        if not accesses:
            return
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO secret_access (namespace, name, version, accessor, activation_id, accessed) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (a.namespace, a.name, a.version, a.accessor, a.activation_id, a.accessed),
                )
                for a in accesses
            ]
        )

    async def list_secret_access(self, namespace: str, name: str, limit: int = 100) -> list[SecretAccess]:
        """Recent reads."""
        rows = await self._db.fetchall(
            "SELECT namespace, name, version, accessor, activation_id, accessed FROM secret_access "
            "WHERE namespace = ? AND name = ? ORDER BY accessed DESC, id DESC LIMIT ?",
            (namespace, name, limit),
        )
        return [SecretAccess(r[0], r[1], int(r[2]), r[3], r[4], int(r[5])) for r in rows]
