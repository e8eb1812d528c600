"""Storage of role bindings, namespace policies, key listings, the revocation epoch and audit chains.

``SqlAccess`` is mixed into ``SqlStore``; every write is a bound-parameter statement and audit
appends are conditional on the chain's next sequence number (a racing writer retries).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, final

from stockade.domain import JSON
from stockade.store.driver import Driver, Step
from stockade.store.keymaterial import KeyRecord

__all__ = ["AccessStore", "AuditRecord", "RoleBinding", "SqlAccess"]


@final
@dataclass(frozen=True, slots=True)
class RoleBinding:
    """``subject`` holds ``role`` in ``namespace``."""

    namespace: str
    subject: str
    role: str
    granted_by: str
    created: int


@final
@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry of a namespace's audit chain."""

    chain: str
    seq: int
    at: int
    entry: dict[str, JSON]
    mac: str


class AccessStore(Protocol):
    """Roles, policies, keys and audit chains."""

    async def get_role(self, namespace: str, subject: str) -> str | None:
        """The role of ``subject`` in ``namespace``."""

    async def list_roles(self, namespace: str) -> list[RoleBinding]:
        """Bindings of a namespace by subject."""

    async def put_role(self, binding: RoleBinding) -> None:
        """Create or replace a binding."""

    async def delete_role(self, namespace: str, subject: str) -> bool:
        """Remove a binding; False if there was none."""

    async def is_protected(self, namespace: str) -> bool:
        """Whether only deployers may change the namespace's entities."""

    async def set_protected(self, namespace: str, protected: bool, when_ms: int) -> None:
        """Set the namespace policy."""

    async def list_keys(self, namespace: str | None = None) -> list[KeyRecord]:
        """Keys (of a namespace, or all), oldest first."""

    async def set_key_hmac(self, uuid: str, sealed: dict[str, JSON]) -> None:
        """Store the sealed request-signing key of an API key."""

    async def get_key_hmac(self, uuid: str) -> dict[str, JSON] | None:
        """The sealed request-signing key of an API key."""

    async def list_key_hmacs(self) -> dict[str, dict[str, JSON]]:
        """Every key's sealed signing key, by uuid (keys without one are left out)."""

    async def security_epoch(self) -> int:
        """A counter bumped by every revocation or role change; caches watch it."""

    async def bump_security_epoch(self) -> None:
        """Increment the epoch."""

    async def audit_tail(self, chain: str) -> AuditRecord | None:
        """The last entry of a chain."""

    async def append_audit(self, records: list[AuditRecord]) -> None:
        """Insert entries; ConflictError if a sequence number is taken (a concurrent writer)."""

    async def list_audit(
        self, chain: str, *, since_seq: int = 0, limit: int = 1000, since_ms: int | None = None
    ) -> list[AuditRecord]:
        """Entries of a chain in sequence order."""


class SqlAccess:
    """AccessStore over the SQL driver of the class it is mixed into."""

    _db: Driver

    async def get_role(self, namespace: str, subject: str) -> str | None:
        """One binding's role."""
        row = await self._db.fetchone(
            "SELECT role FROM role_bindings WHERE namespace = ? AND subject = ?", (namespace, subject)
        )
        return str(row[0]) if row else None

    async def list_roles(self, namespace: str) -> list[RoleBinding]:
        """All bindings of a namespace."""
        rows = await self._db.fetchall(
            "SELECT namespace, subject, role, granted_by, created FROM role_bindings WHERE namespace = ? ORDER BY subject",
            (namespace,),
        )
        return [RoleBinding(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]

    async def put_role(self, binding: RoleBinding) -> None:
        """Upsert a binding."""
        await self._db.transaction(
            [
                Step(
                    "DELETE FROM role_bindings WHERE namespace = ? AND subject = ?",
                    (binding.namespace, binding.subject),
                ),
                Step(
                    "INSERT INTO role_bindings (namespace, subject, role, granted_by, created) VALUES (?, ?, ?, ?, ?)",
                    (binding.namespace, binding.subject, binding.role, binding.granted_by, binding.created),
                ),
                Step("UPDATE security_epoch SET epoch = epoch + 1 WHERE id = 1"),
            ]
        )

    async def delete_role(self, namespace: str, subject: str) -> bool:
        """Remove a binding."""
        counts = await self._db.transaction(
            [
                Step("DELETE FROM role_bindings WHERE namespace = ? AND subject = ?", (namespace, subject)),
                Step("UPDATE security_epoch SET epoch = epoch + 1 WHERE id = 1"),
            ]
        )
        return counts[0] == 1

    async def is_protected(self, namespace: str) -> bool:
        """Namespace policy."""
        row = await self._db.fetchone("SELECT protected FROM namespace_policies WHERE namespace = ?", (namespace,))
        return bool(row[0]) if row else False

    async def set_protected(self, namespace: str, protected: bool, when_ms: int) -> None:
        """Upsert the namespace policy."""
        await self._db.transaction(
            [
                Step("DELETE FROM namespace_policies WHERE namespace = ?", (namespace,)),
                Step(
                    "INSERT INTO namespace_policies (namespace, protected, updated) VALUES (?, ?, ?)",
                    (namespace, protected, when_ms),
                ),
                Step("UPDATE security_epoch SET epoch = epoch + 1 WHERE id = 1"),
            ]
        )

    async def list_keys(self, namespace: str | None = None) -> list[KeyRecord]:
        """Keys, oldest first."""
        sql = "SELECT uuid, key_hash, subject, namespace, created, revoked FROM api_keys"
        args: tuple[Any, ...] = ()
        if namespace is not None:
            sql += " WHERE namespace = ?"
            args = (namespace,)
        rows = await self._db.fetchall(sql + " ORDER BY created, uuid", args)
        return [KeyRecord(r[0], bytes(r[1]), r[2], r[3], int(r[4]), None if r[5] is None else int(r[5])) for r in rows]

    async def set_key_hmac(self, uuid: str, sealed: dict[str, JSON]) -> None:
        """Store the sealed signing key."""
        await self._db.transaction(
            [
                Step(
                    "UPDATE api_keys SET hmac_sealed = ? WHERE uuid = ?",
                    (json.dumps(sealed, sort_keys=True), uuid),
                    expect_rows=1,
                )
            ]
        )

    async def list_key_hmacs(self) -> dict[str, dict[str, JSON]]:
        """All sealed signing keys (authentication keeps them in memory, like the key records)."""
        rows = await self._db.fetchall("SELECT uuid, hmac_sealed FROM api_keys WHERE hmac_sealed IS NOT NULL")
        return {str(r[0]): json.loads(r[1]) for r in rows}

    async def get_key_hmac(self, uuid: str) -> dict[str, JSON] | None:
        """The sealed signing key."""
        row = await self._db.fetchone("SELECT hmac_sealed FROM api_keys WHERE uuid = ?", (uuid,))
        if row is None or row[0] is None:
            return None
        loaded: dict[str, JSON] = json.loads(row[0])
        return loaded

    async def security_epoch(self) -> int:
        """Current epoch."""
        row = await self._db.fetchone("SELECT epoch FROM security_epoch WHERE id = 1")
        return int(row[0]) if row else 0

    async def bump_security_epoch(self) -> None:
        """Increment."""
        await self._db.transaction([Step("UPDATE security_epoch SET epoch = epoch + 1 WHERE id = 1")])

    def _audit(self, row: tuple[Any, ...]) -> AuditRecord:
        return AuditRecord(row[0], int(row[1]), int(row[2]), json.loads(row[3]), row[4])

    async def audit_tail(self, chain: str) -> AuditRecord | None:
        """Last entry of a chain."""
        row = await self._db.fetchone(
            "SELECT chain, seq, at, entry, mac FROM audit_log WHERE chain = ? ORDER BY seq DESC LIMIT 1", (chain,)
        )
        return self._audit(row) if row else None

    async def append_audit(self, records: list[AuditRecord]) -> None:
        """Insert a batch of entries (all or none)."""
        if not records:
            return
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO audit_log (chain, seq, at, entry, mac) VALUES (?, ?, ?, ?, ?)",
                    (r.chain, r.seq, r.at, json.dumps(r.entry, sort_keys=True, separators=(",", ":")), r.mac),
                )
                for r in records
            ]
        )

    async def list_audit(
        self, chain: str, *, since_seq: int = 0, limit: int = 1000, since_ms: int | None = None
    ) -> list[AuditRecord]:
        """Entries in order."""
        sql = "SELECT chain, seq, at, entry, mac FROM audit_log WHERE chain = ? AND seq > ?"
        args: list[Any] = [chain, since_seq]
        if since_ms is not None:
            sql += " AND at >= ?"
            args.append(since_ms)
        rows = await self._db.fetchall(sql + " ORDER BY seq LIMIT ?", (*args, limit))
        return [self._audit(r) for r in rows]
