"""Key rotation, online: new data keys re-encrypt values; new master keys rewrap data keys.

Both are restartable and lose nothing when interrupted: old keys stay readable until no value
or data key depends on them, and every rewrite is a conditional write that retries on a race.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, final

import structlog

from stockade.domain import Clock
from stockade.errors import ConflictError, IntegrityError
from stockade.security import (
    DataKey,
    Keyring,
    MasterKey,
    SealedBox,
    ValueContext,
    key_id_of,
    load_keyring,
    new_key,
    seal_value,
    unwrap_data_key,
    wrap_data_key,
    write_keyring,
)
from stockade.services.integrity import ActionIntegrity
from stockade.services.vault import ParameterVault
from stockade.store import Collection, Put, Store, StoredEntity
from stockade.store.keymaterial import DataKeyRecord

__all__ = ["KeyRotation", "RotationReport"]

log = structlog.get_logger("stockade.rotation")

_SEALED_COLLECTIONS: tuple[Collection, ...] = ("actions", "packages", "triggers")
_PAGE = 200
_RETRIES = 5


@final
@dataclass(frozen=True, slots=True)
class RotationReport:
    """What a rotation changed."""

    new_key_id: str
    rewritten: int
    retired: tuple[str, ...]


class KeyRotation:
    """Data-key and master-key rotation over a store."""

    def __init__(
        self, store: Store, vault: ParameterVault, clock: Clock, *, integrity: ActionIntegrity | None = None
    ) -> None:
        self._store = store
        self._vault = vault
        self._clock = clock
        self._integrity = integrity

    async def _code(self, entity: StoredEntity) -> bytes | None:
        digest = entity.doc.get("exec", {}).get("codeDigest")
        return await self._store.get_code(digest) if digest else None

    async def rotate_data_key(self, namespace: str) -> RotationReport:
        """Make a new active data key for ``namespace`` and re-encrypt every value under it."""
        material = new_key()
        new = DataKey(namespace, key_id_of(material), material)
        master = self._vault.keyring.current
        await self._store.put_data_key(
            DataKeyRecord(
                namespace, new.key_id, master.key_id, wrap_data_key(master, new), "active", self._clock.now_ms()
            )
        )
        old = [
            r for r in await self._store.list_data_keys(namespace) if r.key_id != new.key_id and r.state != "retired"
        ]
        for record in old:
            await self._store.set_data_key_state(namespace, record.key_id, "retiring")
        self._vault.forget_active(namespace)
        rewritten = await self._reencrypt(namespace, new)
        # Invariant: a key is retired only when a full pass finds nothing sealed under it.
        remaining = await self._kids_in_use(namespace)
        retired = []
        for record in old:
            if record.key_id not in remaining:
                await self._store.set_data_key_state(namespace, record.key_id, "retired")
                retired.append(record.key_id)
        log.info("vault.data_key_rotated", namespace=namespace, key_id=new.key_id, rewritten=rewritten)
        return RotationReport(new.key_id, rewritten, tuple(retired))

    async def _reencrypt(self, namespace: str, new: DataKey) -> int:
        rewritten = 0
        for collection in _SEALED_COLLECTIONS:
            skip = 0
            while True:
                page = await self._store.list_entities(namespace, collection, package=None, skip=skip, limit=_PAGE)
                for entity in page:
                    rewritten += await self._rewrite_entity(namespace, collection, entity.name, new)
                if len(page) < _PAGE:
                    break
                skip += _PAGE
        for latest in await self._store.list_secrets(namespace):
            for record in await self._store.list_secret_versions(namespace, latest.name):
                box = SealedBox.from_json(record.sealed)
                if box.key_id == new.key_id:
                    continue
                context = (namespace, "secrets", record.name, str(record.version))
                value = await self._vault.open_json(context, record.sealed)
                sealed = seal_value(new, ValueContext(*context), value).to_json()
                if await self._store.replace_secret_sealed(replace(record, sealed=sealed), record.sealed):
                    rewritten += 1
        return rewritten

    async def _rewrite_entity(self, namespace: str, collection: Collection, name: str, new: DataKey) -> int:
        for _ in range(_RETRIES):
            entity = await self._store.get_entity(namespace, name)
            if entity is None or entity.collection != collection:
                return 0
            if collection in ("actions", "packages") and self._integrity is not None:
                # Re-encryption changes the stored boxes, so the action is stamped again below;
                # check first that it is still what was deployed (rotation must not launder an edit).
                try:
                    await self._integrity.verify(
                        namespace, name, entity.doc, await self._code(entity), collection=collection
                    )
                except IntegrityError:
                    return 0  # refused at every run anyway; its old key stays until it is redeployed
            params: list[dict[str, Any]] = [dict(item) for item in entity.doc.get("parameters") or []]
            changed = False
            for item in params:
                stored = item.get("sealed")
                if not stored or stored.get("kid") == new.key_id:
                    continue
                context = (namespace, collection, name, item["key"])
                value = await self._vault.open_json(context, stored)
                item["sealed"] = seal_value(new, ValueContext(*context), value).to_json()
                changed = True
            if not changed:
                return 0
            doc = {**entity.doc, "parameters": params}
            if collection in ("actions", "packages") and self._integrity is not None:
                doc = await self._integrity.stamp(namespace, name, doc, collection)
            try:
                await self._store.apply(
                    [Put(namespace, name, collection, doc, entity.updated, expected_revision=entity.revision)]
                )
            except ConflictError:
                continue  # changed under us: read again and redo this entity
            return 1
        raise ConflictError(f"could not re-encrypt {collection} {name}: it kept changing")

    async def _kids_in_use(self, namespace: str) -> set[str]:
        kids: set[str] = set()
        for collection in _SEALED_COLLECTIONS:
            skip = 0
            while True:
                page = await self._store.list_entities(namespace, collection, package=None, skip=skip, limit=_PAGE)
                for entity in page:
                    kids.update(i["sealed"]["kid"] for i in entity.doc.get("parameters") or [] if i.get("sealed"))
                if len(page) < _PAGE:
                    break
                skip += _PAGE
        for latest in await self._store.list_secrets(namespace):
            for record in await self._store.list_secret_versions(namespace, latest.name):
                kids.add(str(record.sealed.get("kid")))
        return kids

    async def rotate_master_key(self, keyring_path: Path) -> RotationReport:
        """New master key first in the keyring file, rewrap every data key, then drop old masters."""
        keyring = load_keyring(keyring_path, create=False)
        new_master = MasterKey(new_key())
        write_keyring(keyring_path, [new_master, *keyring.keys])
        extended = Keyring((new_master, *keyring.keys))
        rewrapped = 0
        for _ in range(_RETRIES):
            pending = [r for r in await self._store.list_data_keys() if r.master_key_id != new_master.key_id]
            if not pending:
                break
            for record in pending:
                master = extended.get(record.master_key_id)
                if master is None:
                    raise ConflictError(f"data key {record.key_id} is wrapped by a master key not in the keyring")
                key = unwrap_data_key(master, record.namespace, record.key_id, record.wrapped)
                rewrap = DataKeyRecord(
                    record.namespace,
                    record.key_id,
                    new_master.key_id,
                    wrap_data_key(new_master, key),
                    record.state,
                    record.created,
                )
                if await self._store.rewrap_data_key(record.namespace, record.key_id, record.master_key_id, rewrap):
                    rewrapped += 1
        still_old = [r for r in await self._store.list_data_keys() if r.master_key_id != new_master.key_id]
        if still_old:
            # Keep the old masters in the file: some data keys still need them.
            return RotationReport(new_master.key_id, rewrapped, ())
        write_keyring(keyring_path, [new_master])
        retired = tuple(k.key_id for k in keyring.keys)
        log.info("vault.master_key_rotated", master_key_id=new_master.key_id, rewrapped=rewrapped)
        return RotationReport(new_master.key_id, rewrapped, retired)
