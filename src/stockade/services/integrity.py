"""Deployed actions stay what was deployed: stamp on write, verify on every load from the store.

Packages are stamped and verified the same way: their parameters are bound into their actions'
runs (package < binding < action < request).

Every write of an action document (deploy, re-encryption on key rotation, the one-time backfill)
goes through ``stamp``; every load of an action from the store for a run (the catalog, whose
in-process cache is the only cache in front of it) goes through ``verify``. A mismatch refuses
the run with IntegrityError, emits an ``integrity.tamper`` event (critical; the default alert
rule ``integrity-tamper`` fires on it) and never hands the code on.

The MAC key is derived from a data key of the pseudo-namespace ``/integrity``; data keys are
stored wrapped by the master key, which is not in the database. Backfill: a start that finds
records but not one stamp (a database from before integrity stamps) stamps them all in one
transaction, logging ``integrity.backfilled``. Once any record is stamped, an unstamped one is
refused. If the integrity data key has vanished while stamped records exist, nothing is stamped
(that is tampering, and it is reported).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import structlog

from stockade.domain import JSON, Clock, Namespace
from stockade.errors import ConflictError, IntegrityError
from stockade.observability.events import EventSink, EventType, NullEventSink, SecurityEvent, Severity
from stockade.security import CryptoError
from stockade.security.integrity import (
    INTEGRITY_KEY_NAMESPACE,
    check_action,
    derive_integrity_key,
    seal_action_doc,
    stamp_of,
)
from stockade.services.vault import ParameterVault
from stockade.store import Collection, Put, StoredEntity, Write
from stockade.store.keymaterial import DataKeyRecord

__all__ = ["ActionIntegrity", "IntegrityStore"]

log = structlog.get_logger("stockade.integrity")

_PAGE = 500
_STAMPED: tuple[Collection, ...] = ("actions", "packages")
_THREAD_THRESHOLD_BYTES = 1 << 20


class IntegrityStore(Protocol):
    """What the integrity service reads and writes."""

    async def list_namespaces(self) -> list[Namespace]:
        """Every namespace."""

    async def list_entities(
        self, namespace: str, collection: Collection, *, package: str | None, skip: int, limit: int
    ) -> list[StoredEntity]:
        """Entities of a collection."""

    async def apply(self, writes: Sequence[Write]) -> list[int]:
        """Conditional writes."""

    async def list_data_keys(self, namespace: str | None = None) -> list[DataKeyRecord]:
        """Wrapped data keys."""


class ActionIntegrity:
    """Stamps and verifies action documents (with their code) under the platform's integrity key."""

    def __init__(
        self, store: IntegrityStore, vault: ParameterVault, clock: Clock, events: EventSink | None = None
    ) -> None:
        self._store = store
        self._vault = vault
        self._clock = clock
        self._events: EventSink = events or NullEventSink()
        self._keys: dict[str, bytes] = {}

    async def _key(self, kid: str) -> bytes | None:
        cached = self._keys.get(kid)
        if cached is not None:
            return cached
        try:
            data_key = await self._vault.data_key(INTEGRITY_KEY_NAMESPACE, kid)
        except CryptoError:
            return None
        key = derive_integrity_key(data_key.key)
        self._keys[kid] = key
        return key

    async def stamp(
        self, namespace: str, name: str, doc: Mapping[str, Any], collection: str = "actions"
    ) -> dict[str, JSON]:
        """``doc`` (of ``collection``: actions or packages) with its MAC under the current key."""
        data_key = await self._vault.active_key(INTEGRITY_KEY_NAMESPACE)
        key = await self._key(data_key.key_id)
        if key is None:  # pragma: no cover - the active key was just loaded
            raise CryptoError("the integrity key cannot be loaded")
        sealed: dict[str, JSON] = seal_action_doc(data_key.key_id, key, namespace, name, doc, collection)
        return sealed

    async def verify(
        self,
        namespace: str,
        name: str,
        doc: Mapping[str, Any],
        code: bytes | None,
        *,
        subject: str = "",
        collection: str = "actions",
    ) -> None:
        """Return if ``doc`` and ``code`` are as deployed; else event, log and IntegrityError."""
        stamp = stamp_of(doc)
        key = await self._key(stamp[0]) if stamp is not None else None
        known = {stamp[0]: key} if stamp is not None and key is not None else {}
        if code is not None and len(code) > _THREAD_THRESHOLD_BYTES:
            problem = await asyncio.to_thread(check_action, namespace, name, doc, code, known.get, collection)
        else:
            problem = check_action(namespace, name, doc, code, known.get, collection)
        if problem is None:
            return
        version = str(doc.get("version", ""))
        log.error("integrity.tamper", namespace=namespace, action=name, version=version, problem=problem)
        self._events.emit(
            SecurityEvent(
                type=EventType.INTEGRITY_TAMPER,
                severity=Severity.CRITICAL,
                time_ms=self._clock.now_ms(),
                namespace=namespace,
                action=name if collection == "actions" else "",
                subject=subject,
                source="integrity",
                details={"version": version, "problem": problem, "collection": collection},
            )
        )
        raise IntegrityError()

    async def backfill(self) -> int:
        """Stamp every stored action and package when none carries a stamp (a database from
        before integrity stamps); returns how many. All in one transaction: an interrupted
        backfill stamps nothing and runs again at the next start."""
        for _attempt in range(3):
            have_key = bool(await self._store.list_data_keys(INTEGRITY_KEY_NAMESPACE))
            entities = await self._all_entities()
            stamped = [e for e in entities if stamp_of(e.doc) is not None]
            if stamped:
                if not have_key:
                    # Stamped records but no key: the key row was removed. Blessing everything now
                    # would launder whatever was edited; refuse (every run fails) and report.
                    log.error("integrity.key_missing", stamped=len(stamped))
                    self._emit(Severity.CRITICAL, "integrity key missing while stamped records exist")
                return 0
            if not entities:
                return 0  # a fresh database: the key is created by the first write
            if have_key:
                # Nothing stamped although the key exists: an earlier first start stopped before its
                # backfill committed, or every stamp was removed. Re-stamped, and on record.
                log.warning("integrity.restamped_all", records=len(entities))
                self._emit(Severity.HIGH, "no record carried a stamp although the integrity key exists; re-stamped")
            writes: list[Write] = [
                Put(
                    e.namespace,
                    e.name,
                    e.collection,
                    await self.stamp(e.namespace, e.name, e.doc, e.collection),
                    e.updated,
                    expected_revision=e.revision,
                )
                for e in entities
            ]
            try:
                await self._store.apply(writes)
            except ConflictError:
                continue  # something was written meanwhile: read everything again
            log.info("integrity.backfilled", records=len(writes))
            return len(writes)
        raise ConflictError("integrity backfill: records kept changing; restart to retry")

    async def _all_entities(self) -> list[StoredEntity]:
        entities: list[StoredEntity] = []
        for namespace in [ns.name for ns in await self._store.list_namespaces()]:
            for collection in _STAMPED:
                skip = 0
                while True:
                    page = await self._store.list_entities(namespace, collection, package=None, skip=skip, limit=_PAGE)
                    entities.extend(page)
                    if len(page) < _PAGE:
                        break
                    skip += _PAGE
        return entities

    def _emit(self, severity: Severity, problem: str) -> None:
        self._events.emit(
            SecurityEvent(
                type=EventType.INTEGRITY_TAMPER,
                severity=severity,
                time_ms=self._clock.now_ms(),
                source="integrity",
                details={"problem": problem},
            )
        )
