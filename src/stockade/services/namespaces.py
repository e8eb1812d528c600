"""Namespaces and their keys: bootstrap on first start, create, list."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import final

from stockade.domain import Clock, Namespace, validate_namespace
from stockade.security import ApiKey, generate_key, hash_secret
from stockade.store import KeyRecord, Store

__all__ = ["Bootstrap", "NamespaceService"]


@final
@dataclass(frozen=True, slots=True)
class Bootstrap:
    """The result of a first start: the default namespace's key, shown once."""

    namespace: str
    key: ApiKey | None  # None when the namespace already existed


class NamespaceService:
    """Create namespaces and issue keys."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def create(self, name: str, subject: str | None = None) -> ApiKey:
        """Create a namespace with one key for ``subject`` (default: the namespace name)."""
        validate_namespace(name)
        now = self._clock.now_ms()
        await self._store.create_namespace(Namespace(name, str(uuid.uuid4()), now))
        return await self.issue_key(name, subject or name)

    async def issue_key(self, namespace: str, subject: str) -> ApiKey:
        """A new key for ``subject`` in ``namespace``; only its hash is stored."""
        key = generate_key()
        await self._store.put_key(
            KeyRecord(key.uuid, hash_secret(key.secret), subject, namespace, self._clock.now_ms())
        )
        return key

    async def bootstrap(self, name: str) -> Bootstrap:
        """Ensure the default namespace exists; on first start return its new key."""
        if await self._store.get_namespace(name) is not None:
            return Bootstrap(name, None)
        return Bootstrap(name, await self.create(name))
