"""API keys: 256-bit random secrets, stored only as SHA-256, compared in constant time.

A key is ``uuid:secret`` with a 64-hex-character secret (OpenWhisk's shape). The secret has 256
bits of entropy, so a fast hash is enough: there is nothing to brute-force that a slow hash
would protect, and the hot path stays free of password hashing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import final

__all__ = ["ApiKey", "generate_key", "hash_secret", "parse_basic_auth", "secret_matches"]


@final
@dataclass(frozen=True, slots=True)
class ApiKey:
    """A freshly generated key; ``secret`` is shown once and never stored."""

    uuid: str
    secret: str

    @property
    def token(self) -> str:
        """``uuid:secret``, the form clients put in Basic auth and wskprops AUTH."""
        return f"{self.uuid}:{self.secret}"

    def __repr__(self) -> str:
        return f"ApiKey(uuid={self.uuid!r}, secret=<redacted>)"


def generate_key() -> ApiKey:
    """A new key: random UUID plus 256 random bits as 64 hex characters."""
    return ApiKey(str(uuid.uuid4()), secrets.token_hex(32))


def hash_secret(secret: str) -> bytes:
    """SHA-256 of the secret part."""
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def parse_basic_auth(header: str) -> tuple[str, str] | None:
    """``Basic base64(uuid:secret)`` → (uuid, secret), or None when malformed."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, secret = decoded.partition(":")
    if not sep or not user or not secret:
        return None
    return user, secret
