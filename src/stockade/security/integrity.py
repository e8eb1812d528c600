"""Integrity of deployed actions: a MAC binding everything that decides what runs to the version.

Packages (whose parameters are bound into their actions' runs) are stamped the same way.

The MAC covers the stored action document as a whole (kind, code digest, zip-or-plain, entry
point, sequence components, parameters with their sealed boxes, annotations, limits, version)
and the action's namespace and name, under a key derived from a data key that only the master
key can unwrap (the key is never in the database's rows). The code blob is checked against the
document's ``codeDigest`` (SHA-256 of the exact bytes), so an edited blob, an edited document
or a document pointing at another blob all fail. Pure functions only: the service layer
(``services/integrity.py``) loads keys, records events and refuses runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = [
    "INTEGRITY_FIELD",
    "INTEGRITY_KEY_NAMESPACE",
    "action_mac",
    "check_action",
    "derive_integrity_key",
    "seal_action_doc",
    "stamp_of",
]

# The stored document's field holding {"kid": data key id, "mac": hex}.
INTEGRITY_FIELD: Final = "integrity"
# The pseudo-namespace whose data key the integrity key is derived from ("/" is never in a name).
INTEGRITY_KEY_NAMESPACE: Final = "/integrity"
_LABEL: Final = b"stockade/action-integrity/v1"


def derive_integrity_key(data_key: bytes) -> bytes:
    """The MAC key: HMAC-SHA256(data key, label), so the data key itself is never used twice."""
    return hmac.new(data_key, _LABEL, hashlib.sha256).digest()


def _canonical(namespace: str, name: str, doc: Mapping[str, Any], collection: str) -> bytes:
    body = {k: v for k, v in doc.items() if k != INTEGRITY_FIELD}
    return json.dumps(
        {"v": 1, "collection": collection, "namespace": namespace, "name": name, "doc": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode()


def action_mac(key: bytes, namespace: str, name: str, doc: Mapping[str, Any], collection: str = "actions") -> str:
    """HMAC-SHA256 of the canonical form of a document of ``collection`` at ``namespace/name``."""
    return hmac.new(key, _canonical(namespace, name, doc, collection), hashlib.sha256).hexdigest()


def seal_action_doc(
    key_id: str, key: bytes, namespace: str, name: str, doc: Mapping[str, Any], collection: str = "actions"
) -> dict[str, Any]:
    """``doc`` with its integrity stamp (any previous stamp replaced)."""
    body = {k: v for k, v in doc.items() if k != INTEGRITY_FIELD}
    return {**body, INTEGRITY_FIELD: {"kid": key_id, "mac": action_mac(key, namespace, name, body, collection)}}


def stamp_of(doc: Mapping[str, Any]) -> tuple[str, str] | None:
    """(key id, mac) of a stamped document, None when it carries no well-formed stamp."""
    stamp = doc.get(INTEGRITY_FIELD)
    if not isinstance(stamp, Mapping):
        return None
    kid, mac = stamp.get("kid"), stamp.get("mac")
    if not isinstance(kid, str) or not isinstance(mac, str) or not kid or not mac:
        return None
    return kid, mac


def check_action(
    namespace: str,
    name: str,
    doc: Mapping[str, Any],
    code: bytes | None,
    key_for: Callable[[str], bytes | None],
    collection: str = "actions",
) -> str | None:
    """None when ``doc`` and ``code`` are what was deployed, else what is wrong (no secrets).

    ``code`` is the blob loaded by the document's ``codeDigest`` (None when absent); sequences
    have no code. ``key_for`` maps a key id to its MAC key, None when unknown.
    """
    stamp = stamp_of(doc)
    if stamp is None:
        return "no integrity stamp"
    kid, mac = stamp
    key = key_for(kid)
    if key is None:
        return f"unknown integrity key {kid}"
    if not hmac.compare_digest(action_mac(key, namespace, name, doc, collection), mac):
        return "document altered (MAC mismatch)"
    exec_doc = doc.get("exec")
    digest = exec_doc.get("codeDigest") if isinstance(exec_doc, Mapping) else None
    if digest:
        if code is None:
            return "code blob missing"
        if not hmac.compare_digest(hashlib.sha256(code).hexdigest(), str(digest)):
            return "code blob altered (digest mismatch)"
    return None
