"""HMAC-signed API requests: the canonical form both the server and the CLI compute.

Stdlib only, so the CLI (which talks HTTP only) and the server share one definition.

    Authorization: Stockade-HMAC-SHA256 Credential=<key uuid>, Timestamp=<epoch s>, Nonce=<hex>, Signature=<hex>

The signature is HMAC-SHA256, under the key's signing key, of the canonical request:
method, path, sorted query, SHA-256 of the body, timestamp and nonce, one per line. The
signing key is derived from the API key's secret, so the secret itself never travels.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import urllib.parse

__all__ = [
    "SCHEME",
    "canonical_request",
    "parse_authorization",
    "sign_request",
    "signature_headers",
    "signing_key",
]

SCHEME = "Stockade-HMAC-SHA256"


def signing_key(secret: str) -> bytes:
    """The request-signing key of an API key's secret."""
    return hmac.new(secret.encode(), b"stockade-request-signing-v1", hashlib.sha256).digest()


def canonical_request(method: str, path: str, query: str, body: bytes, timestamp: str, nonce: str) -> bytes:
    """Method, path, sorted query, body hash, timestamp and nonce, newline-separated."""
    pairs = sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
    canonical_query = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
    return "\n".join(
        [method.upper(), path, canonical_query, hashlib.sha256(body).hexdigest(), timestamp, nonce]
    ).encode()


def sign_request(key: bytes, method: str, path: str, query: str, body: bytes, timestamp: str, nonce: str) -> str:
    """Hex HMAC-SHA256 of the canonical request."""
    return hmac.new(key, canonical_request(method, path, query, body, timestamp, nonce), hashlib.sha256).hexdigest()


def signature_headers(
    key_uuid: str, secret: str, method: str, path: str, query: str, body: bytes, now_s: int
) -> dict[str, str]:
    """The Authorization header for a signed request (a fresh nonce each call)."""
    nonce = secrets.token_hex(16)
    timestamp = str(now_s)
    signature = sign_request(signing_key(secret), method, path, query, body, timestamp, nonce)
    return {
        "Authorization": f"{SCHEME} Credential={key_uuid}, Timestamp={timestamp}, Nonce={nonce}, Signature={signature}"
    }


def parse_authorization(header: str) -> dict[str, str] | None:
    """The fields of a Stockade-HMAC-SHA256 Authorization header, or None when it is not one."""
    scheme, _, rest = header.partition(" ")
    if scheme != SCHEME:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return None
        fields[name] = value
    if set(fields) != {"Credential", "Timestamp", "Nonce", "Signature"}:
        return None
    return fields
