"""The master keyring: master keys from a 0600 file (or one from a variable), newest first.

Rotation writes a new keyring file atomically with the new key first and the old ones after,
so data keys wrapped under either stay readable until they are all rewrapped.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import final

from stockade.errors import PlatformError
from stockade.security.crypto import KEY_BYTES, MasterKey, new_key

__all__ = ["Keyring", "KeyringError", "load_keyring", "write_keyring"]


class KeyringError(PlatformError):
    """The master key cannot be loaded safely."""

    status = 500
    code = "keyring_error"
    exit_code = 9


@final
@dataclass(frozen=True, slots=True)
class Keyring:
    """Master keys, the first one current."""

    keys: tuple[MasterKey, ...]

    @property
    def current(self) -> MasterKey:
        """The key new data keys are wrapped with."""
        return self.keys[0]

    def get(self, key_id: str) -> MasterKey | None:
        """The key with ``key_id``."""
        return next((k for k in self.keys if k.key_id == key_id), None)


def _decode(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError("the master key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyringError(f"the master key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def write_keyring(path: Path, keys: list[MasterKey]) -> None:
    """Write the keyring atomically with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    doc = {"keys": [base64.b64encode(k.key).decode() for k in keys]}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_keyring(path: Path, inline_key: str = "", *, create: bool = True) -> Keyring:
    """The keyring from ``inline_key`` (base64) if set, else from ``path`` (created when absent).

    Refuses a file that group or others can read or write.
    """
    if inline_key:
        return Keyring((MasterKey(_decode(inline_key)),))
    if not path.exists():
        if not create:
            raise KeyringError(f"master key file {path} does not exist")
        write_keyring(path, [MasterKey(new_key())])
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyringError(f"master key file {path} must not be accessible by group or others (chmod 600)")
    try:
        doc = json.loads(path.read_text())
        entries = doc["keys"]
    except (OSError, ValueError, KeyError, TypeError):
        raise KeyringError(f"master key file {path} is not a Stockade keyring") from None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, str) for e in entries):
        raise KeyringError(f"master key file {path} holds no keys")
    return Keyring(tuple(MasterKey(_decode(e)) for e in entries))
