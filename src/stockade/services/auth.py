"""Authentication of API requests by key, with a short-lived cache of key records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from stockade.domain import Clock, Identity
from stockade.errors import UnauthenticatedError
from stockade.security.keys import parse_basic_auth, secret_matches
from stockade.store import KeyRecord, Store

__all__ = ["MISSING_AUTH_MESSAGE", "Authenticator", "Credentials"]

MISSING_AUTH_MESSAGE = "The resource requires authentication, which was not supplied with the request"


@final
@dataclass(frozen=True, slots=True)
class Credentials:
    """An authenticated identity and the token it presented (kept for provide-api-key)."""

    identity: Identity
    token: str

    def __repr__(self) -> str:
        return f"Credentials(identity={self.identity!r}, token=<redacted>)"


class Authenticator:
    """Checks Basic credentials against stored key hashes.

    Key records are cached for ``cache_ttl_s`` so the hot path does not hit the store; the
    comparison itself runs on every request, in constant time.
    """

    def __init__(self, store: Store, clock: Clock, cache_ttl_s: float = 2.0) -> None:
        self._store = store
        self._clock = clock
        self._ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}

    async def _record(self, key_uuid: str) -> KeyRecord | None:
        now = self._clock.monotonic()
        hit = self._cache.get(key_uuid)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        record = await self._store.get_key(key_uuid)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_uuid] = (now, record)
        return record

    def forget(self, key_uuid: str) -> None:
        """Drop a cached record (after a revoke on this process)."""
        self._cache.pop(key_uuid, None)

    async def authenticate(self, authorization: str | None) -> Credentials:
        """Identity for an Authorization header; UnauthenticatedError otherwise."""
        if not authorization:
            raise UnauthenticatedError(MISSING_AUTH_MESSAGE)
        parsed = parse_basic_auth(authorization)
        if parsed is None:
            raise UnauthenticatedError()
        key_uuid, secret = parsed
        if len(key_uuid) > 128 or len(secret) > 256:
            raise UnauthenticatedError()
        record = await self._record(key_uuid)
        if record is None or record.revoked is not None or not secret_matches(secret, record.key_hash):
            raise UnauthenticatedError()
        return Credentials(Identity(record.subject, record.namespace, record.uuid), f"{key_uuid}:{secret}")

    async def try_authenticate(self, authorization: str | None) -> Credentials | None:
        """Like authenticate, but None for missing or invalid credentials (web actions)."""
        try:
            return await self.authenticate(authorization)
        except UnauthenticatedError:
            return None
