"""Parts every entity shares: key/value parameters and annotations, versions, size checks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, final

from stockade.errors import BadRequestError, PayloadTooLargeError

__all__ = [
    "ENCRYPTION",
    "JSON",
    "EntityFields",
    "FingerprintRef",
    "KeyValue",
    "KeyValues",
    "Sealed",
    "bump_version",
    "fingerprint_refs",
    "has_sealed",
    "kv_from_json",
    "kv_size",
    "kv_to_dict",
    "kv_to_json",
    "parse_entity_fields",
    "validate_version",
]

JSON = Any  # a JSON value: dict, list, str, int, float, bool or None


@final
@dataclass(frozen=True, slots=True)
class KeyValue:
    """One parameter or annotation; ``init`` parameters go to the runtime's environment."""

    key: str
    value: JSON
    init: bool = False


KeyValues = tuple[KeyValue, ...]

ENCRYPTION = "AES-256-GCM"


@final
@dataclass(frozen=True, slots=True)
class Sealed:
    """An encrypted parameter value as loaded from the store.

    ``context`` is where the value was found (namespace, collection, entity, name), taken from
    the store's row, never from the ciphertext, so a value moved elsewhere fails to decrypt.
    """

    box: Mapping[str, str]
    context: tuple[str, str, str, str]

    @property
    def fingerprint(self) -> str:
        """The keyed fingerprint shown instead of the value."""
        return str(self.box.get("fp", ""))

    @property
    def size(self) -> int:
        """Bytes of the JSON-encoded plaintext (ciphertext minus the 16-byte GCM tag), no decryption."""
        text = str(self.box.get("ct", ""))
        raw = len(text) * 3 // 4 - text[-2:].count("=")
        return max(raw - 16, 0)


FINGERPRINT_PREFIX = "hmac-sha256:"
_MAX_TRANSFER_CHARS = 4 * 1024 * 1024


@final
@dataclass(frozen=True, slots=True)
class FingerprintRef:
    """A parameter sent back as the fingerprint a read showed (``"encryption"`` set on the entry).

    It stands for a sealed value the platform already holds; services replace it with that value
    (re-sealed for its new place) or refuse the write, so it is never stored or run as a value.
    """

    fingerprint: str
    # An export's transfer token for the value (``ParameterVault.transfer_token``), if one came along.
    transfer: str | None = None


def kv_from_json(raw: Any, what: str, *, sealed_refs: bool = False) -> KeyValues:
    """Parse ``[{"key":..,"value":..}]``; duplicate keys keep the last value.

    With ``sealed_refs`` (parameters of a PUT), an entry carrying ``"encryption"`` is the
    fingerprint a read showed and becomes a :class:`FingerprintRef`.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadRequestError(f"The request content was malformed:\n'{what}' must be an array")
    seen: dict[str, KeyValue] = {}
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise BadRequestError(
                f"The request content was malformed:\neach entry of '{what}' must be an object with a string 'key'"
            )
        init = item.get("init", False)
        if not isinstance(init, bool):
            raise BadRequestError(f"The request content was malformed:\n'init' in '{what}' must be a boolean")
        key = item["key"]
        value = item.get("value")
        if sealed_refs and item.get("encryption") is not None:
            if not isinstance(value, str) or not value.startswith(FINGERPRINT_PREFIX):
                raise BadRequestError(
                    f"The request content was malformed:\nthe parameter '{key}' has 'encryption' but its value "
                    "is not a fingerprint"
                )
            transfer = item.get("sealed")
            if transfer is not None and (not isinstance(transfer, str) or len(transfer) > _MAX_TRANSFER_CHARS):
                raise BadRequestError(
                    f"The request content was malformed:\n'sealed' of the parameter '{key}' must be a transfer token"
                )
            value = FingerprintRef(value, transfer)
        seen.pop(key, None)
        seen[key] = KeyValue(key, value, init)
    return tuple(seen.values())


def kv_to_json(values: Iterable[KeyValue]) -> list[dict[str, JSON]]:
    """Render key/values in OpenWhisk's array form."""
    out: list[dict[str, JSON]] = []
    for kv in values:
        item: dict[str, JSON]
        if isinstance(kv.value, Sealed):
            item = {"key": kv.key, "value": kv.value.fingerprint, "encryption": ENCRYPTION}
        else:
            item = {"key": kv.key, "value": kv.value}
        if kv.init:
            item["init"] = True
        out.append(item)
    return out


def fingerprint_refs(values: Iterable[KeyValue]) -> list[str]:
    """Keys whose value is a fingerprint sent back (to be resolved before a write)."""
    return [kv.key for kv in values if isinstance(kv.value, FingerprintRef)]


def has_sealed(values: Iterable[KeyValue]) -> bool:
    """True when any value is encrypted."""
    return any(isinstance(kv.value, Sealed) for kv in values)


def kv_to_dict(values: Iterable[KeyValue]) -> dict[str, JSON]:
    """Key → value, later entries winning."""
    return {kv.key: kv.value for kv in values}


def kv_get(values: Sequence[KeyValue], key: str, default: JSON = None) -> JSON:
    """The value for ``key`` or ``default``."""
    for kv in reversed(values):
        if kv.key == key:
            return kv.value
    return default


def kv_merge(base: Sequence[KeyValue], overlay: Sequence[KeyValue]) -> KeyValues:
    """``base`` overlaid by ``overlay`` (same keys replaced, order kept)."""
    merged = {kv.key: kv for kv in base}
    for kv in overlay:
        merged.pop(kv.key, None)
        merged[kv.key] = kv
    return tuple(merged.values())


def kv_set(values: Sequence[KeyValue], key: str, value: JSON) -> KeyValues:
    """``values`` with ``key`` set to ``value``."""
    return kv_merge(values, (KeyValue(key, value),))


def kv_without(values: Sequence[KeyValue], keys: Iterable[str]) -> KeyValues:
    """``values`` without the given keys."""
    drop = set(keys)
    return tuple(kv for kv in values if kv.key not in drop)


def kv_size(values: Iterable[KeyValue]) -> int:
    """Bytes of keys plus JSON-encoded values, as OpenWhisk measures parameter size (sealed: plaintext size)."""
    return sum(len(kv.key.encode()) + _value_size(kv.value) for kv in values)


def _value_size(value: JSON) -> int:
    if isinstance(value, Sealed):
        return value.size
    if isinstance(value, FingerprintRef):
        return len(value.fingerprint)
    return len(json.dumps(value, separators=(",", ":")).encode())


def check_kv_size(values: Sequence[KeyValue], what: str, limit: int) -> None:
    """Raise 413 when parameters or annotations exceed ``limit`` bytes."""
    size = kv_size(values)
    if size > limit:
        raise PayloadTooLargeError(f"{what} larger than allowed: {size} > {limit} bytes.")


@final
@dataclass(frozen=True, slots=True)
class EntityFields:
    """The fields every entity PUT body may carry; None means "not given" (keep on update)."""

    version: str | None
    publish: bool | None
    parameters: KeyValues | None
    annotations: KeyValues | None


def parse_entity_fields(payload: Mapping[str, Any]) -> EntityFields:
    """``version``, ``publish``, ``parameters`` and ``annotations`` of a PUT body, validated."""
    publish = payload.get("publish")
    if publish is not None and not isinstance(publish, bool):
        raise BadRequestError("The request content was malformed:\n'publish' must be a boolean")
    return EntityFields(
        version=validate_version(payload["version"]) if payload.get("version") is not None else None,
        publish=publish,
        parameters=kv_from_json(payload["parameters"], "parameters", sealed_refs=True)
        if "parameters" in payload
        else None,
        annotations=kv_from_json(payload["annotations"], "annotations") if "annotations" in payload else None,
    )


def validate_version(text: Any) -> str:
    """A semver ``major.minor.patch`` string."""
    if not isinstance(text, str):
        raise BadRequestError("The request content was malformed:\n'version' must be a string")
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise BadRequestError(f"The request content was malformed:\n'{text}' is not a valid semantic version")
    return ".".join(str(int(p)) for p in parts)


def bump_version(version: str) -> str:
    """Next patch version."""
    major, minor, patch = (int(p) for p in version.split("."))
    return f"{major}.{minor}.{patch + 1}"


def is_truthy(value: JSON) -> bool:
    """OpenWhisk truthiness: false, 0, "" and null are falsy; everything else is truthy."""
    return not (value is None or value is False or value == 0 or value == "")


def as_mapping(raw: Any, what: str) -> Mapping[str, Any]:
    """``raw`` if it is a JSON object, else a malformed-request error."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequestError(f"The request content was malformed:\n'{what}' must be an object")
    return raw
