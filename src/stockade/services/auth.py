"""Authentication of API requests: API keys (Basic), action tokens, JWT bearers, signed requests.

Key records are cached and dropped whenever the store's security epoch moves (a revocation
anywhere). Every secret comparison is constant-time. Known and unknown key uuids cost the same
work: every key record lives in one in-memory index (reloaded when the epoch moves or it ages),
and an unknown uuid is compared against a dummy hash. Repeated failures are slowed, then refused
for a while (429) per (subject, source) and per source (``LoginGuard``, store-backed), and each
failure goes to the audit log. The Authorization header is read by one total parser
(``security/credentials.py``): a malformed header is a 401 that counts, never an error.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from typing import Final, Protocol, final

import structlog

from stockade.domain import JSON, Clock, Identity
from stockade.errors import ThrottledError, UnauthenticatedError
from stockade.observability.events import EventSink, EventType, NullEventSink, SecurityEvent, Severity
from stockade.security import SealedBox, ValueContext, open_value
from stockade.security.credentials import Presented, read_authorization
from stockade.security.jwt_auth import JwtVerifier
from stockade.security.keys import secret_matches
from stockade.security.tokens import ActionTokens
from stockade.services.audit import PLATFORM_CHAIN, AuditEvent, AuditLog
from stockade.services.lockout import LOCKED_MESSAGE, LoginGuard
from stockade.services.vault import ParameterVault
from stockade.signing import sign_request
from stockade.store import AccessStore, KeyRecord, LoginStore

__all__ = ["LOCKED_MESSAGE", "MISSING_AUTH_MESSAGE", "Authenticator", "Credentials", "KeyStore", "SignedParts"]

log = structlog.get_logger("stockade.auth")

MISSING_AUTH_MESSAGE = "The resource requires authentication, which was not supplied with the request"
# Compared against when a uuid is unknown, so the answer costs the same hash as a known one.
_DUMMY_HASH = bytes(32)


class KeyStore(AccessStore, LoginStore, Protocol):
    """What authentication reads: key records and signing keys, failed-login counters."""


SIGNATURE_WINDOW_S: Final = 300


@final
@dataclass(frozen=True, slots=True)
class Credentials:
    """An authenticated identity (and, for a JWT, when it stops being valid)."""

    identity: Identity
    expires_ms: int | None = None


@final
@dataclass(frozen=True, slots=True)
class SignedParts:
    """What a signed request's signature covers."""

    method: str
    path: str
    query: str
    body: bytes


class _NonceCache:
    """Nonces seen within the signature window (replays are refused)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def add(self, nonce: str, now_s: float) -> bool:
        """False when ``nonce`` was already used."""
        if len(self._seen) > 50_000:
            self._seen = {n: t for n, t in self._seen.items() if now_s - t <= 2 * SIGNATURE_WINDOW_S}
        if nonce in self._seen:
            return False
        self._seen[nonce] = now_s
        return True


class Authenticator:
    """Turns an Authorization header into an Identity, or raises 401 (429 when locked out)."""

    def __init__(
        self,
        store: KeyStore,
        clock: Clock,
        *,
        vault: ParameterVault | None = None,
        tokens: ActionTokens | None = None,
        jwt: JwtVerifier | None = None,
        audit: AuditLog | None = None,
        guard: LoginGuard | None = None,
        cache_ttl_s: float = 30.0,
        events: EventSink | None = None,
        shared_nonces: bool = False,
    ) -> None:
        self._events: EventSink = events or NullEventSink()
        self._store = store
        self._clock = clock
        self._vault = vault
        self._tokens = tokens
        self._jwt = jwt
        self._audit = audit
        self.guard = guard or LoginGuard(store, clock)
        self._ttl_s = cache_ttl_s
        # Every key record and sealed signing key by uuid: a lookup costs the same whether or
        # not the uuid exists.
        self._index: dict[str, KeyRecord] | None = None
        self._sealed_signing: dict[str, dict[str, JSON]] = {}
        self._loaded_at = 0.0
        self._reload = asyncio.Lock()
        self._signing_keys: dict[str, bytes] = {}
        self._nonces = _NonceCache()
        # Scale-out: nonces are claimed in the store, so a replay to another controller is caught.
        self._shared_nonces = shared_nonces

    def forget_all(self) -> None:
        """Drop every cached key (the security epoch moved)."""
        self._index = None
        self._signing_keys.clear()

    def forget(self, key_uuid: str) -> None:
        """Drop one cached key (the index reloads on the next lookup)."""
        self._index = None
        self._signing_keys.pop(key_uuid, None)

    async def _keys(self) -> dict[str, KeyRecord]:
        index = self._index
        if index is not None and self._clock.monotonic() - self._loaded_at < self._ttl_s:
            return index
        async with self._reload:
            index = self._index
            if index is None or self._clock.monotonic() - self._loaded_at >= self._ttl_s:
                started = self._clock.monotonic()
                index = {k.uuid: k for k in await self._store.list_keys()}
                self._sealed_signing = await self._store.list_key_hmacs()
                self._signing_keys.clear()
                self._index, self._loaded_at = index, started
            return index

    async def _record(self, key_uuid: str) -> KeyRecord | None:
        return (await self._keys()).get(key_uuid)

    async def _fail(self, source: str, reason: str, subject: str = "", namespace: str = "") -> UnauthenticatedError:
        """Count, report and audit a failure. ``subject`` is the presented key uuid (never a secret)."""
        try:
            delay = await self.guard.failed(subject, source)
        except Exception:
            log.exception("auth.count_failed")
            delay = 0.0
        # Invariant: the key uuid and the reason only; the presented secret is never reported.
        self._events.emit(
            SecurityEvent(
                type=EventType.AUTH_FAILED,
                severity=Severity.MEDIUM if namespace else Severity.LOW,
                time_ms=self._clock.now_ms(),
                namespace=namespace,
                subject=subject if namespace else "",
                source="auth",
                details={"reason": reason, "client": source},
            )
        )
        if self._audit is not None:
            actor = subject if namespace else "anonymous"
            self._audit.record(
                AuditEvent(PLATFORM_CHAIN, actor, "auth.failed", "api", "denied", source, {"reason": reason})
            )
        if delay:
            await asyncio.sleep(min(delay, 5.0))
        return UnauthenticatedError()

    async def authenticate(
        self, authorization: str | None, *, source: str = "", signed: SignedParts | None = None
    ) -> Credentials:
        """The caller's identity; 401 for missing or invalid credentials, 429 while locked out.

        The one entry point for REST, web actions and the gateway: every malformed header is a
        401 counted toward lockout with the caller's real source.
        """
        presented = read_authorization(authorization)
        await self.guard.check(presented.subject, source)
        if presented.kind == "missing":
            raise UnauthenticatedError(MISSING_AUTH_MESSAGE)
        if presented.kind == "malformed":
            raise await self._fail(source, presented.problem, presented.subject)
        if presented.kind == "bearer":
            return await self._bearer(presented, source)
        if presented.kind == "signed":
            return await self._signed(presented, source, signed)
        if presented.kind == "token":
            return await self._action_token(presented, source)
        record = await self._record(presented.subject)
        matches = secret_matches(presented.secret, record.key_hash if record is not None else _DUMMY_HASH)
        if record is None or record.revoked is not None or not matches:
            raise await self._fail(source, "invalid key", presented.subject, record.namespace if record else "")
        return Credentials(Identity(record.subject, record.namespace, record.uuid))

    async def _action_token(self, presented: Presented, source: str) -> Credentials:
        verified = (
            self._tokens.verify(presented.token, presented.secret, self._clock.now_ms()) if self._tokens else None
        )
        if verified is None:
            raise await self._fail(source, "invalid or expired action token")
        claims = verified
        identity = Identity(
            subject=f"{claims.action} (for {claims.subject})",
            namespace=claims.namespace,
            key_uuid="",
            kind="action_token",
            scope=claims.scope,
        )
        return Credentials(identity)

    async def _bearer(self, presented: Presented, source: str) -> Credentials:
        token = presented.token
        claims = self._jwt.verify(token) if (self._jwt is not None and self._jwt.is_enabled and token) else None
        if claims is None:
            raise await self._fail(source, "invalid bearer token")
        identity = Identity(
            subject=f"{claims.issuer}#{claims.subject}",
            namespace=claims.namespace,
            key_uuid="",
            kind="jwt",
            scope=claims.scope,
            role=claims.role,
        )
        return Credentials(identity, expires_ms=claims.expires_s * 1000)

    async def _signing_key(self, record: KeyRecord | None) -> bytes | None:
        """The request-signing key of a known key, from the in-memory index (no store read)."""
        if record is None:
            return None
        cached = self._signing_keys.get(record.uuid)
        if cached is not None:
            return cached
        sealed = self._sealed_signing.get(record.uuid)
        if sealed is None or self._vault is None:
            return None
        box = SealedBox.from_json(sealed)
        data_key = await self._vault.data_key(record.namespace, box.key_id)
        value = open_value(data_key, ValueContext(record.namespace, "api_keys", record.uuid, "signing"), box)
        key = bytes.fromhex(str(value))
        self._signing_keys[record.uuid] = key
        return key

    async def _signed(self, presented: Presented, source: str, signed: SignedParts | None) -> Credentials:
        fields = presented.fields
        if signed is None:
            raise await self._fail(source, "malformed signature header", presented.subject)
        now_s = self._clock.now_ms() / 1000
        try:
            timestamp = int(fields["Timestamp"])
        except ValueError:
            raise await self._fail(source, "malformed signature timestamp", presented.subject) from None
        if abs(now_s - timestamp) > SIGNATURE_WINDOW_S:
            raise await self._fail(source, "signature timestamp outside the allowed window", presented.subject)
        record = await self._record(presented.subject)
        key = await self._signing_key(record)
        if record is None or record.revoked is not None or key is None:
            raise await self._fail(source, "unknown signing key", presented.subject)
        expected = sign_request(
            key, signed.method, signed.path, signed.query, signed.body, fields["Timestamp"], fields["Nonce"]
        )
        if not hmac.compare_digest(expected.encode(), fields["Signature"].encode()):
            raise await self._fail(source, "bad signature", record.uuid, record.namespace)
        if self._shared_nonces:
            fresh = await self._store.claim_nonce(
                fields["Nonce"], self._clock.now_ms(), int(2 * SIGNATURE_WINDOW_S * 1000)
            )
        else:
            fresh = self._nonces.add(fields["Nonce"], now_s)
        if not fresh:
            raise await self._fail(source, "replayed signature", record.uuid, record.namespace)
        return Credentials(Identity(record.subject, record.namespace, record.uuid))

    async def try_authenticate(self, authorization: str | None, *, source: str) -> Credentials | None:
        """Like authenticate, but None for missing or invalid credentials (web actions).

        ``source`` is required: failures count per client address, never in one shared bucket.
        """
        try:
            return await self.authenticate(authorization, source=source)
        except (UnauthenticatedError, ThrottledError):
            return None
