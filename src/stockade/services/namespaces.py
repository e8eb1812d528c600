"""Namespaces and their keys: bootstrap on first start, create, list."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import final

from stockade.domain import Clock, Namespace, validate_namespace
from stockade.security import ApiKey, generate_key, hash_secret
from stockade.services.audit import AuditEvent, AuditLog
from stockade.services.vault import ParameterVault
from stockade.signing import signing_key
from stockade.store import KeyRecord, RoleBinding, Store

__all__ = ["Bootstrap", "NamespaceService"]


@final
@dataclass(frozen=True, slots=True)
class Bootstrap:
    """The result of a first start: the default namespace's key, shown once."""

    namespace: str
    key: ApiKey | None  # None when the namespace already existed


class NamespaceService:
    """Create namespaces and issue keys."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        vault: ParameterVault,
        *,
        audit: AuditLog | None = None,
        on_key_issued: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._vault = vault
        self._audit = audit
        # Key lookups use an in-memory index of every key: a new key must reach every process's
        # index (the local one now, the others through the security epoch).
        self._on_key_issued = on_key_issued

    async def create(self, name: str, subject: str | None = None, *, actor: str = "platform") -> ApiKey:
        """Create a namespace whose owner is ``subject`` (default: the namespace name), with one key."""
        validate_namespace(name)
        now = self._clock.now_ms()
        owner = subject or name
        await self._store.create_namespace(Namespace(name, str(uuid.uuid4()), now))
        await self._store.put_role(RoleBinding(name, owner, "owner", "platform", now))
        if self._audit is not None:
            self._audit.record(AuditEvent(name, actor, "namespace.created", name, "ok", details={"owner": owner}))
        return await self.issue_key(name, owner, actor=actor, role="owner")

    async def issue_key(
        self, namespace: str, subject: str, *, actor: str = "platform", role: str = "", source: str = ""
    ) -> ApiKey:
        """A new key for ``subject`` in ``namespace``.

        Stored: the SHA-256 of the secret, and the request-signing key derived from it, sealed
        under the namespace's data key (for HMAC-signed requests). The secret itself is shown once.
        """
        key = generate_key()
        await self._store.put_key(
            KeyRecord(key.uuid, hash_secret(key.secret), subject, namespace, self._clock.now_ms())
        )
        sealed = await self._vault.seal_json(
            namespace, (namespace, "api_keys", key.uuid, "signing"), signing_key(key.secret).hex()
        )
        await self._store.set_key_hmac(key.uuid, dict(sealed))
        await self._store.bump_security_epoch()
        if self._on_key_issued is not None:
            self._on_key_issued()
        if self._audit is not None:
            # Invariant: the uuid, subject and role only; the secret is never recorded.
            self._audit.record(
                AuditEvent(
                    namespace,
                    actor,
                    "key.created",
                    f"{namespace}/keys/{key.uuid}",
                    "ok",
                    source,
                    {"uuid": key.uuid, "subject": subject, "role": role or None},
                )
            )
        return key

    async def bootstrap(self, name: str) -> Bootstrap:
        """Ensure the default namespace exists; on first start return its new key."""
        if await self._store.get_namespace(name) is not None:
            return Bootstrap(name, None)
        return Bootstrap(name, await self.create(name))
