"""ParameterVault: seals bound parameters at rest and opens them on the invoke path only.

Each namespace has an active data key (created on first use), wrapped by the current master
key. Plaintext data keys are cached in memory; the active key id expires from the cache after
``active_ttl_s`` so rotations by other processes take effect.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import Any

import structlog

from stockade.domain import JSON, Clock, FingerprintRef, KeyValue, KeyValues, Sealed
from stockade.errors import BadRequestError
from stockade.observability.events import EventSink, EventType, NullEventSink, SecurityEvent, Severity
from stockade.security import (
    CryptoError,
    DataKey,
    Keyring,
    KeyringError,
    SealedBox,
    ValueContext,
    key_id_of,
    new_key,
    open_value,
    seal_value,
    unwrap_data_key,
    wrap_data_key,
)
from stockade.store import Store
from stockade.store.keymaterial import DataKeyRecord

__all__ = ["ParameterVault"]

log = structlog.get_logger("stockade.vault")
_TRANSFER = "transfer"
_NOT_OPENED: Any = object()


class ParameterVault:
    """Envelope encryption of parameters and secrets, per namespace."""

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        clock: Clock,
        *,
        reload_keyring: Callable[[], Keyring] | None = None,
        active_ttl_s: float = 5.0,
        events: EventSink | None = None,
    ) -> None:
        self._events: EventSink = events or NullEventSink()
        self._store = store
        self._keyring = keyring
        self._clock = clock
        self._reload = reload_keyring
        self._active_ttl_s = active_ttl_s
        self._keys: dict[tuple[str, str], DataKey] = {}
        self._active: dict[str, tuple[float, str]] = {}
        self._lock = asyncio.Lock()

    @property
    def keyring(self) -> Keyring:
        """The master keyring in use."""
        return self._keyring

    def _refresh_keyring(self) -> None:
        if self._reload is not None:
            self._keyring = self._reload()

    async def verify(self) -> None:
        """Refuse to start with a master key that cannot open this database's data keys.

        Read-only: nothing is written, so a wrong key touches no data.
        """
        records = await self._store.list_data_keys()
        checked: set[str] = set()
        for record in records:
            if record.master_key_id in checked:
                continue
            master = self._keyring.get(record.master_key_id)
            if master is None:
                known = ", ".join(k.key_id for k in self._keyring.keys)
                raise KeyringError(
                    f"the master key does not match this database: its data keys are wrapped by master key "
                    f"{record.master_key_id}, the keyring has {known}"
                )
            try:
                unwrap_data_key(master, record.namespace, record.key_id, record.wrapped)
            except CryptoError:
                raise KeyringError(
                    f"the master key {master.key_id} failed to open data key {record.key_id} of namespace "
                    f"{record.namespace!r}: wrong key or tampered database"
                ) from None
            checked.add(record.master_key_id)

    def _unwrap(self, record: DataKeyRecord) -> DataKey:
        master = self._keyring.get(record.master_key_id)
        if master is None:
            self._refresh_keyring()
            master = self._keyring.get(record.master_key_id)
        if master is None:
            raise CryptoError(f"data key {record.key_id} is wrapped by an unknown master key")
        return unwrap_data_key(master, record.namespace, record.key_id, record.wrapped)

    async def data_key(self, namespace: str, key_id: str) -> DataKey:
        """A data key by id (cached)."""
        cached = self._keys.get((namespace, key_id))
        if cached is not None:
            return cached
        return await self._load_key(namespace, key_id)

    async def _load_key(self, namespace: str, key_id: str) -> DataKey:
        for record in await self._store.list_data_keys(namespace):
            if record.key_id == key_id:
                key = self._unwrap(record)
                self._keys[(namespace, key_id)] = key
                return key
        raise CryptoError(f"no data key {key_id} for namespace {namespace!r}")

    async def active_key(self, namespace: str) -> DataKey:
        """The namespace's newest active data key, created on first use."""
        hit = self._active.get(namespace)
        now = self._clock.monotonic()
        if hit is not None and now - hit[0] < self._active_ttl_s:
            return await self.data_key(namespace, hit[1])
        async with self._lock:
            # Whoever held the lock may have refreshed it meanwhile: a burst reads the store once.
            hit = self._active.get(namespace)
            if hit is not None and self._clock.monotonic() - hit[0] < self._active_ttl_s:
                return await self.data_key(namespace, hit[1])
            records = [r for r in await self._store.list_data_keys(namespace) if r.state == "active"]
            if not records:
                return await self._create_key(namespace)
            record = records[0]
            self._active[namespace] = (now, record.key_id)
            return await self.data_key(namespace, record.key_id)

    async def _create_key(self, namespace: str) -> DataKey:
        # Invariant: new data keys are wrapped by the newest master key on disk, so a master-key
        # rotation in progress elsewhere never leaves a key wrapped only by a retired master.
        self._refresh_keyring()
        material = new_key()
        key = DataKey(namespace, key_id_of(material), material)
        master = self._keyring.current
        record = DataKeyRecord(
            namespace, key.key_id, master.key_id, wrap_data_key(master, key), "active", self._clock.now_ms()
        )
        # Two processes creating a namespace's first key at once each make one; both stay valid
        # and the newest becomes the one used for sealing.
        await self._store.put_data_key(record)
        self._keys[(namespace, key.key_id)] = key
        self._active[namespace] = (self._clock.monotonic(), key.key_id)
        log.info("vault.data_key_created", namespace=namespace, key_id=key.key_id, master_key_id=master.key_id)
        return key

    async def seal(
        self, namespace: str, collection: str, entity: str, values: KeyValues, *, exempt: frozenset[str] = frozenset()
    ) -> KeyValues:
        """Encrypt every plain value (sealed ones stay as they are), bound to its location.

        ``null`` values hold nothing and stay plain (OpenWhisk does not seal them either).
        """
        if all(isinstance(kv.value, Sealed) or kv.value is None or kv.key in exempt for kv in values):
            return values
        key = await self.active_key(namespace)
        out: list[KeyValue] = []
        for kv in values:
            if isinstance(kv.value, Sealed) or kv.value is None or kv.key in exempt:
                out.append(kv)
                continue
            context = (namespace, collection, entity, kv.key)
            box = seal_value(key, ValueContext(*context), kv.value)
            out.append(KeyValue(kv.key, Sealed(box.to_json(), context), kv.init))
        return tuple(out)

    async def adopt(
        self,
        namespace: str,
        collection: str,
        entity: str,
        values: KeyValues,
        sources: Iterable[KeyValue] | AsyncIterable[KeyValue],
    ) -> KeyValues:
        """Replace each fingerprint sent back (:class:`FingerprintRef`) by the value it stands for.

        A fingerprint is looked up among ``sources`` (sealed values the caller may overwrite) of
        this ``namespace`` only: a fingerprint shown by another namespace's published package never
        opens its value here. A value already sealed at this very place is kept as it is; one found
        elsewhere is opened here and re-sealed for its new place by ``seal``, so the caller never
        sees it. Unmatched fingerprints are a 400 naming the parameter.
        """
        wanted = {kv.value.fingerprint for kv in values if isinstance(kv.value, FingerprintRef)}
        if not wanted:
            return values
        found: dict[str, Sealed] = {}

        def consider(kv: KeyValue) -> None:
            value = kv.value
            if not isinstance(value, Sealed) or value.context[0] != namespace:
                return
            for fingerprint in wanted:
                if fingerprint not in found and hmac.compare_digest(value.fingerprint, fingerprint):
                    found[fingerprint] = value

        if isinstance(sources, AsyncIterable):
            async for kv in sources:
                consider(kv)
                if len(found) == len(wanted):
                    break
        else:
            for kv in sources:
                consider(kv)
        out: list[KeyValue] = []
        for kv in values:
            if not isinstance(kv.value, FingerprintRef):
                out.append(kv)
                continue
            sealed = found.get(kv.value.fingerprint)
            if sealed is None and kv.value.transfer is not None:
                opened = await self._open_transfer(namespace, kv.value)
                if opened is not _NOT_OPENED:
                    out.append(KeyValue(kv.key, opened, kv.init))
                    continue
            if sealed is None:
                raise BadRequestError(
                    f"The parameter '{kv.key}' was sent as the fingerprint {kv.value.fingerprint}, which matches "
                    "no value stored in this namespace; send its value instead."
                )
            if sealed.context == (namespace, collection, entity, kv.key):
                out.append(KeyValue(kv.key, sealed, kv.init))
            else:
                out.append(KeyValue(kv.key, await self.open(sealed), kv.init))
        return tuple(out)

    async def transfer_token(self, namespace: str, value: Sealed) -> str:
        """An opaque token carrying ``value`` out of the platform and back into ``namespace`` only.

        The value is re-sealed under the namespace's active data key, bound to the "transfer"
        collection and to the fingerprint shown beside it: only this platform can open it, only
        into this namespace, and only for that fingerprint. Exports carry it so that a manifest
        redeploys its values even after the entities it came from were deleted.
        """
        plaintext = await self.open(value)
        key = await self.active_key(namespace)
        box = seal_value(key, ValueContext(namespace, _TRANSFER, "", value.fingerprint), plaintext)
        return base64.urlsafe_b64encode(json.dumps(box.to_json(), separators=(",", ":")).encode()).decode()

    async def _open_transfer(self, namespace: str, ref: FingerprintRef) -> JSON:
        """The value a transfer token carries, or ``_NOT_OPENED`` (forged, foreign, or its key retired)."""
        try:
            doc = json.loads(base64.urlsafe_b64decode((ref.transfer or "").encode()))
            box = SealedBox.from_json(doc)
            key = await self.data_key(namespace, box.key_id)
            return open_value(key, ValueContext(namespace, _TRANSFER, "", ref.fingerprint), box)
        except (CryptoError, ValueError, TypeError, binascii.Error):
            return _NOT_OPENED

    async def open(self, value: JSON) -> JSON:
        """The plaintext of a sealed value (other values as they are)."""
        if not isinstance(value, Sealed):
            return value
        try:
            box = SealedBox.from_json(value.box)
            key = await self.data_key(value.context[0], box.key_id)
            return open_value(key, ValueContext(*value.context), box)
        except CryptoError as exc:
            namespace, collection, entity, name = value.context
            log.error(
                "security.decrypt_failed",
                namespace=namespace,
                collection=collection,
                entity=entity,
                parameter=name,
                reason=exc.message,
            )
            self._events.emit(
                SecurityEvent(
                    type=EventType.DECRYPT_FAILED,
                    severity=Severity.CRITICAL,
                    time_ms=self._clock.now_ms(),
                    namespace=namespace,
                    action=entity if collection == "actions" else "",
                    source="vault",
                    details={"collection": collection, "entity": entity, "parameter": name, "reason": exc.message},
                )
            )
            raise

    async def reveal(self, params: Mapping[str, JSON]) -> dict[str, JSON]:
        """Parameters with every sealed value opened (for the run only; never stored)."""
        if not any(isinstance(v, Sealed) for v in params.values()):
            return dict(params)
        return {k: await self.open(v) if isinstance(v, Sealed) else v for k, v in params.items()}

    async def reveal_values(self, values: KeyValues) -> KeyValues:
        """Key/values with sealed values opened."""
        return tuple([KeyValue(kv.key, await self.open(kv.value), kv.init) for kv in values])

    async def seal_json(self, namespace: str, context: tuple[str, str, str, str], value: Any) -> dict[str, str]:
        """Seal one value (secrets) and return its stored form."""
        key = await self.active_key(namespace)
        return seal_value(key, ValueContext(*context), value).to_json()

    async def open_json(self, context: tuple[str, str, str, str], stored: Mapping[str, str]) -> JSON:
        """Open one stored value (secrets)."""
        return await self.open(Sealed(stored, context))

    def forget_active(self, namespace: str) -> None:
        """Drop the cached active key id (after a rotation)."""
        self._active.pop(namespace, None)
