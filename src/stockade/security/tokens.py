"""Short-lived action tokens: what an action gets instead of a namespace key.

A token is shaped like an OpenWhisk key (``user:secret``) so unmodified clients inside the
action can use it: ``user`` is ``tok.`` + base64url of the claims, ``secret`` the hex HMAC of
``user`` under a key derived from the master key. Tokens are stateless, scoped to the actions
the issuing action's policy names, and expire at the activation deadline.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from stockade.security.crypto import MasterKey

__all__ = ["TOKEN_PREFIX", "ActionTokens", "TokenClaims"]

TOKEN_PREFIX = "tok."  # noqa: S105 - a public prefix, not a secret


@final
@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a token allows: who acts, for which action, on what, until when."""

    namespace: str
    subject: str
    action: str  # the FQN of the action the token was issued to
    scope: tuple[str, ...]  # FQN patterns the holder may invoke
    expires_ms: int


def _derive(master: MasterKey) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"stockade-action-tokens-v1").derive(master.key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ActionTokens:
    """Issues tokens with the current master key and verifies them with any key of the keyring."""

    def __init__(self, masters: Sequence[MasterKey]) -> None:
        self._keys = [_derive(m) for m in masters]

    def issue(self, claims: TokenClaims) -> str:
        """``user:secret`` for ``claims``."""
        payload = {
            "v": 1,
            "ns": claims.namespace,
            "sub": claims.subject,
            "act": claims.action,
            "scope": list(claims.scope),
            "exp": claims.expires_ms,
        }
        user = TOKEN_PREFIX + _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{user}:{hmac.new(self._keys[0], user.encode(), hashlib.sha256).hexdigest()}"

    def verify(self, user: str, secret: str, now_ms: int) -> TokenClaims | None:
        """The claims of a valid, unexpired token; None otherwise (compared in constant time)."""
        if not user.startswith(TOKEN_PREFIX) or len(user) > 4096:
            return None
        presented = secret.encode()
        if not any(
            hmac.compare_digest(hmac.new(key, user.encode(), hashlib.sha256).hexdigest().encode(), presented)
            for key in self._keys
        ):
            return None
        try:
            payload = json.loads(_unb64(user[len(TOKEN_PREFIX) :]))
            claims = TokenClaims(
                namespace=str(payload["ns"]),
                subject=str(payload["sub"]),
                action=str(payload["act"]),
                scope=tuple(str(s) for s in payload["scope"]),
                expires_ms=int(payload["exp"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if claims.expires_ms <= now_ms:
            return None
        return claims
