"""Envelope encryption: AES-256-GCM data keys per namespace, wrapped by a master key.

Every sealed value is bound by associated data to where it lives (namespace, collection,
entity, parameter name), so a ciphertext copied to another place fails to decrypt instead of
leaking. Fingerprints are keyed (HMAC) so a weak secret cannot be guessed from its listing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Any, final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from stockade.errors import InternalError

__all__ = [
    "KEY_BYTES",
    "CryptoError",
    "DataKey",
    "MasterKey",
    "SealedBox",
    "ValueContext",
    "key_id_of",
    "new_key",
    "open_value",
    "seal_value",
    "unwrap_data_key",
    "wrap_data_key",
]

KEY_BYTES = 32
NONCE_BYTES = 12
ALGORITHM = "AES-256-GCM"


class CryptoError(InternalError):
    """A value or key failed authentication: tampered, swapped, or the wrong key."""

    code = "crypto_error"


@functools.lru_cache(maxsize=1024)
def _aead(key: bytes) -> AESGCM:
    """The AES-GCM context of a key, built once (the key schedule is the costly part)."""
    return AESGCM(key)


@functools.lru_cache(maxsize=1024)
def _fingerprint_key(key: bytes) -> bytes:
    """HKDF of a data key, derived once per key like ``_aead`` (every seal fingerprints its value)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"stockade-fingerprint").derive(key)


def new_key() -> bytes:
    """32 random bytes."""
    return os.urandom(KEY_BYTES)


def key_id_of(key: bytes) -> str:
    """A short public id for a key (not a secret: a truncated SHA-256 of a derived value)."""
    return hashlib.sha256(b"stockade-key-id\0" + key).hexdigest()[:16]


@final
@dataclass(frozen=True, slots=True)
class MasterKey:
    """A key-encryption key; ``key_id`` is recorded with every data key it wraps."""

    key: bytes

    @property
    def key_id(self) -> str:
        """Public id."""
        return key_id_of(self.key)

    def __repr__(self) -> str:
        return f"MasterKey(id={self.key_id})"


@final
@dataclass(frozen=True, slots=True)
class DataKey:
    """A namespace's data-encryption key (plaintext; held only in memory)."""

    namespace: str
    key_id: str
    key: bytes

    def fingerprint_key(self) -> bytes:
        """A separate HMAC key derived from the data key (HKDF), for keyed fingerprints."""
        return _fingerprint_key(self.key)

    def __repr__(self) -> str:
        return f"DataKey(namespace={self.namespace!r}, id={self.key_id})"


@final
@dataclass(frozen=True, slots=True)
class ValueContext:
    """Where a sealed value lives; it is the associated data of its encryption."""

    namespace: str
    collection: str
    entity: str
    name: str

    def aad(self) -> bytes:
        """Canonical bytes (length-prefixed parts, so no two contexts collide)."""
        return _aad(self.namespace, self.collection, self.entity, self.name)


@functools.lru_cache(maxsize=4096)
def _aad(namespace: str, collection: str, entity: str, name: str) -> bytes:
    parts = [p.encode() for p in ("stockade-value-v1", namespace, collection, entity, name)]
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


@final
@dataclass(frozen=True, slots=True)
class SealedBox:
    """An encrypted value as stored: data key id, nonce, ciphertext and keyed fingerprint."""

    key_id: str
    nonce: bytes
    ciphertext: bytes
    fingerprint: str

    def to_json(self) -> dict[str, str]:
        """Stored form."""
        return {
            "alg": ALGORITHM,
            "kid": self.key_id,
            "nonce": base64.b64encode(self.nonce).decode(),
            "ct": base64.b64encode(self.ciphertext).decode(),
            "fp": self.fingerprint,
        }

    @classmethod
    def from_json(cls, doc: Any) -> SealedBox:
        """Parse the stored form (memoised on its text: boxes are re-read on every invoke); CryptoError when malformed."""
        try:
            return _parse_box(doc["alg"], doc["kid"], doc["nonce"], doc["ct"], doc["fp"])
        except (KeyError, TypeError):
            raise CryptoError("malformed encrypted value") from None

    @classmethod
    def _from_json(cls, doc: Any) -> SealedBox:
        """Parse the stored form; CryptoError when malformed."""
        try:
            if doc["alg"] != ALGORITHM:
                raise CryptoError("unknown encryption algorithm")
            nonce = base64.b64decode(doc["nonce"], validate=True)
            ciphertext = base64.b64decode(doc["ct"], validate=True)
            if len(nonce) != NONCE_BYTES or not ciphertext:
                raise CryptoError("malformed encrypted value")
            return cls(doc["kid"], nonce, ciphertext, doc["fp"])
        except (KeyError, TypeError, ValueError):
            raise CryptoError("malformed encrypted value") from None


@functools.lru_cache(maxsize=4096)
def _parse_box(alg: str, kid: str, nonce: str, ct: str, fp: str) -> SealedBox:
    # Invariant: only ciphertext metadata is cached here, never a plaintext.
    return SealedBox._from_json({"alg": alg, "kid": kid, "nonce": nonce, "ct": ct, "fp": fp})


def _fingerprint(data_key: DataKey, plaintext: bytes) -> str:
    digest = hmac.new(data_key.fingerprint_key(), plaintext, hashlib.sha256).hexdigest()
    return f"hmac-sha256:{digest[:32]}"


def seal_value(data_key: DataKey, context: ValueContext, value: Any) -> SealedBox:
    """Encrypt a JSON value under ``data_key``, bound to ``context``."""
    plaintext = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = _aead(data_key.key).encrypt(nonce, plaintext, context.aad())
    return SealedBox(data_key.key_id, nonce, ciphertext, _fingerprint(data_key, plaintext))


def open_value(data_key: DataKey, context: ValueContext, box: SealedBox) -> Any:
    """Decrypt a value; CryptoError when it was tampered with or moved from elsewhere."""
    if box.key_id != data_key.key_id:
        raise CryptoError("value is sealed under another data key")
    try:
        plaintext = _aead(data_key.key).decrypt(box.nonce, box.ciphertext, context.aad())
    except InvalidTag:
        raise CryptoError("encrypted value failed authentication") from None
    return json.loads(plaintext)


def _wrap_aad(namespace: str, key_id: str) -> bytes:
    return b"stockade-data-key-v1\0" + namespace.encode() + b"\0" + key_id.encode()


def wrap_data_key(master: MasterKey, data_key: DataKey) -> bytes:
    """nonce || AES-GCM(master, data key), bound to the namespace and key id."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master.key).encrypt(nonce, data_key.key, _wrap_aad(data_key.namespace, data_key.key_id))


def unwrap_data_key(master: MasterKey, namespace: str, key_id: str, wrapped: bytes) -> DataKey:
    """Unwrap a data key; CryptoError with the wrong master key or a tampered row."""
    try:
        key = AESGCM(master.key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_aad(namespace, key_id))
    except (InvalidTag, ValueError):
        raise CryptoError("data key failed authentication (wrong master key or tampered row)") from None
    return DataKey(namespace, key_id, key)
