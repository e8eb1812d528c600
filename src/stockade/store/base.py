"""The Store protocol: what services need from a database, in domain terms.

Entity writes are conditional and atomic: ``apply`` takes a batch of puts and deletes, each
guarded by the revision the caller read, and commits all or none (ConflictError on any race).
Actions, packages, triggers and rules share one key space per namespace, as in OpenWhisk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, final

from stockade.domain import JSON, Activation, Namespace
from stockade.store.access import AccessStore
from stockade.store.console import ConsoleStore
from stockade.store.gateway import GatewayStore
from stockade.store.journal import JournalStore
from stockade.store.keymaterial import KeyMaterialStore, KeyRecord
from stockade.store.logins import LoginStore
from stockade.store.monitoring import MonitoringStore

__all__ = [
    "ActionVersionRef",
    "ActivationQuery",
    "AdvisoryRecord",
    "AdvisoryUpsert",
    "Collection",
    "Delete",
    "KeyRecord",
    "Put",
    "Store",
    "StoredEntity",
    "Write",
]

Collection = Literal["actions", "packages", "triggers", "rules"]


@final
@dataclass(frozen=True, slots=True)
class StoredEntity:
    """An entity document as stored, with its revision for conditional updates."""

    namespace: str
    name: str  # "x" or "pkg/x"
    collection: Collection
    revision: int
    updated: int
    doc: dict[str, JSON]


@final
@dataclass(frozen=True, slots=True)
class Put:
    """Create (``expected_revision`` None) or update (the revision read) one entity."""

    namespace: str
    name: str
    collection: Collection
    doc: dict[str, JSON]
    updated: int
    expected_revision: int | None = None


@final
@dataclass(frozen=True, slots=True)
class Delete:
    """Delete one entity, guarded by the revision read."""

    namespace: str
    name: str
    expected_revision: int


Write = Put | Delete


@final
@dataclass(frozen=True, slots=True)
class ActivationQuery:
    """Filters for listing activations (all optional but namespace)."""

    namespace: str
    entity_path: str | None = None  # "ns/name" or "ns/pkg/name"
    since_ms: int | None = None
    upto_ms: int | None = None
    skip: int = 0
    limit: int = 30
    tag: str | None = None  # only activations of actions with this tag


@final
@dataclass(frozen=True, slots=True)
class AdvisoryRecord:
    """An OSV advisory to store, with the (ecosystem, normalised package name) keys it is found by."""

    id: str
    modified: str
    doc: dict[str, JSON]
    packages: tuple[tuple[str, str], ...]


@final
@dataclass(frozen=True, slots=True)
class AdvisorySync:
    """The last sync of one ecosystem's advisories."""

    ecosystem: str
    synced: int  # ms
    source: str
    etag: str
    last_modified: str
    advisories: int


@final
@dataclass(frozen=True, slots=True)
class AdvisoryUpsert:
    """What an advisory import changed, by advisory id."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


@final
@dataclass(frozen=True, slots=True)
class ActionVersionRef:
    """One deployed action version: the current version of an action entity."""

    namespace: str
    name: str  # "x" or "pkg/x"
    version: str


class Store(
    KeyMaterialStore, AccessStore, MonitoringStore, GatewayStore, LoginStore, ConsoleStore, JournalStore, Protocol
):
    """Persistent state of the platform."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None:
        """Release connections."""

    # Namespaces, subjects and keys.
    async def create_namespace(self, namespace: Namespace) -> None:
        """Create a namespace; ConflictError if it exists."""

    async def get_namespace(self, name: str) -> Namespace | None:
        """The namespace called ``name``."""

    async def list_namespaces(self) -> list[Namespace]:
        """All namespaces."""

    async def put_key(self, key: KeyRecord) -> None:
        """Store a new API key (subject created on first use); ConflictError if the uuid exists."""

    async def get_key(self, uuid: str) -> KeyRecord | None:
        """The key with ``uuid``, revoked or not."""

    async def revoke_key(self, uuid: str, when_ms: int) -> bool:
        """Mark a key revoked; False if there is no such key."""

    # Entities.
    async def get_entity(self, namespace: str, name: str) -> StoredEntity | None:
        """The entity at ``namespace/name`` in any collection."""

    async def list_entities(
        self, namespace: str, collection: Collection, *, package: str | None, skip: int, limit: int
    ) -> list[StoredEntity]:
        """Entities of a collection by ``updated`` descending. ``package``: "" = root level only,
        None = all (root and packaged), "p" = inside package p."""

    async def count_entities(self, namespace: str, collection: Collection, *, package: str | None) -> int:
        """How many entities ``list_entities`` would return without paging."""

    async def apply(self, writes: Sequence[Write]) -> list[int]:
        """Commit all writes or none; returns the new revision per Put (0 per Delete)."""

    async def put_code(self, digest: str, code: bytes) -> None:
        """Store code by content digest (idempotent; rewrites the stored bytes)."""

    async def get_code(self, digest: str) -> bytes | None:
        """Code by digest."""

    async def put_action_version(
        self, namespace: str, name: str, version: str, doc: dict[str, JSON], created: int
    ) -> None:
        """Keep an action version's document (with its code digest); replaces a same-version row."""

    async def get_action_version(self, namespace: str, name: str, version: str) -> dict[str, JSON] | None:
        """A past version's document."""

    # Activations.
    async def put_activations(self, activations: Sequence[Activation]) -> None:
        """Insert activation records in one transaction."""

    async def get_activation(self, namespace: str, activation_id: str) -> Activation | None:
        """An activation of ``namespace``."""

    async def list_activations(self, query: ActivationQuery) -> list[Activation]:
        """Activations by ``start`` descending."""

    async def count_activations(self, query: ActivationQuery) -> int:
        """How many activations match, ignoring paging."""

    # Deploy gate: advisories, scan reports, scan policies.
    async def upsert_advisories(self, advisories: Sequence[AdvisoryRecord], imported_ms: int) -> AdvisoryUpsert:
        """Insert or replace advisories and their package keys in one transaction; an advisory
        whose document is unchanged is left alone."""

    async def find_advisories(self, ecosystem: str, names: Sequence[str]) -> list[dict[str, JSON]]:
        """Documents of the advisories that affect any of ``names`` (normalised) in ``ecosystem``."""

    async def put_advisory_sync(self, record: AdvisorySync) -> None:
        """Record (replace) an ecosystem's last sync."""

    async def list_advisory_sync(self) -> list[AdvisorySync]:
        """Every ecosystem's last sync."""

    async def advisory_coverage(self) -> dict[str, tuple[int, int | None]]:
        """Ecosystem → (stored advisories, newest of its last sync and last import, in ms)."""

    async def count_advisories(self) -> int:
        """How many advisories are stored."""

    async def put_scan_report(
        self, namespace: str, name: str, version: str, doc: dict[str, JSON], created: int
    ) -> None:
        """Keep the scan report of an action version (replaces a same-version report)."""

    async def get_scan_report(self, namespace: str, name: str, version: str) -> dict[str, JSON] | None:
        """The scan report of an action version."""

    async def list_deployed_action_versions(
        self, *, after: tuple[str, str] | None = None, limit: int = 500
    ) -> list[ActionVersionRef]:
        """Current versions of all code and sequence actions by (namespace, name), after ``after``."""

    async def get_scan_policy(self, namespace: str) -> dict[str, JSON] | None:
        """The namespace's scan policy override, if any."""

    async def put_scan_policy(self, namespace: str, doc: dict[str, JSON], updated: int) -> None:
        """Set the namespace's scan policy override."""

    async def delete_scan_policy(self, namespace: str) -> bool:
        """Drop the override (back to the platform default); False if there was none."""
