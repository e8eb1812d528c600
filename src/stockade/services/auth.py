"""Authentication of API requests: API keys (Basic), action tokens, JWT bearers, signed requests.

Key records are cached and dropped whenever the store's security epoch moves (a revocation
anywhere). Every secret comparison is constant-time. Repeated failures from one source are
slowed, then refused for a while (429), and each failure goes to the audit log.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import math
from dataclasses import dataclass
from typing import Final, final

import structlog

from stockade.domain import Clock, Identity
from stockade.errors import ThrottledError, UnauthenticatedError
from stockade.observability.events import EventSink, EventType, NullEventSink, SecurityEvent, Severity
from stockade.security import SealedBox, ValueContext, open_value
from stockade.security.jwt_auth import JwtVerifier
from stockade.security.keys import parse_basic_auth, secret_matches
from stockade.security.tokens import TOKEN_PREFIX, ActionTokens
from stockade.services.audit import PLATFORM_CHAIN, AuditEvent, AuditLog
from stockade.services.vault import ParameterVault
from stockade.signing import parse_authorization, sign_request
from stockade.store import KeyRecord, Store

__all__ = ["MISSING_AUTH_MESSAGE", "Authenticator", "Credentials", "FailureLimiter", "SignedParts"]

log = structlog.get_logger("stockade.auth")

MISSING_AUTH_MESSAGE = "The resource requires authentication, which was not supplied with the request"
LOCKED_MESSAGE = "Too many failed authentication attempts from this address; try again later."
SIGNATURE_WINDOW_S: Final = 300


@final
@dataclass(frozen=True, slots=True)
class Credentials:
    """An authenticated identity."""

    identity: Identity


@final
@dataclass(frozen=True, slots=True)
class SignedParts:
    """What a signed request's signature covers."""

    method: str
    path: str
    query: str
    body: bytes


class FailureLimiter:
    """Per-source failure counting: after ``slow_after`` failures in the window each attempt is
    delayed by the caller; after ``lock_after`` the source is refused for ``lock_s``."""

    def __init__(
        self, clock: Clock, *, window_s: float = 60, slow_after: int = 5, lock_after: int = 20, lock_s: float = 300
    ) -> None:
        self._clock = clock
        self._window_s = window_s
        self._slow_after = slow_after
        self._lock_after = lock_after
        self._lock_s = lock_s
        self._failures: dict[str, collections.deque[float]] = {}
        self._locked: dict[str, float] = {}

    def _recent(self, source: str) -> collections.deque[float]:
        now = self._clock.monotonic()
        failures = self._failures.setdefault(source, collections.deque())
        while failures and now - failures[0] > self._window_s:
            failures.popleft()
        return failures

    def check(self, source: str) -> None:
        """429 while ``source`` is locked out."""
        until = self._locked.get(source)
        if until is None:
            return
        now = self._clock.monotonic()
        if now < until:
            raise ThrottledError(LOCKED_MESSAGE, retry_after_s=math.ceil(until - now))
        del self._locked[source]

    def failed(self, source: str) -> float:
        """Count a failure; returns how long the caller should delay its answer (seconds)."""
        failures = self._recent(source)
        failures.append(self._clock.monotonic())
        if len(self._failures) > 100_000:
            self._failures.clear()
        if len(failures) >= self._lock_after:
            self._locked[source] = self._clock.monotonic() + self._lock_s
            log.warning("auth.source_locked", source=source, failures=len(failures))
            return 0.0
        return 0.5 * max(0, len(failures) - self._slow_after)

    def is_locked(self, source: str) -> bool:
        """Whether ``source`` is refused now."""
        try:
            self.check(source)
        except ThrottledError:
            return True
        return False


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
        store: Store,
        clock: Clock,
        *,
        vault: ParameterVault | None = None,
        tokens: ActionTokens | None = None,
        jwt: JwtVerifier | None = None,
        audit: AuditLog | None = None,
        limiter: FailureLimiter | None = None,
        cache_ttl_s: float = 30.0,
        events: EventSink | None = None,
    ) -> None:
        self._events: EventSink = events or NullEventSink()
        self._store = store
        self._clock = clock
        self._vault = vault
        self._tokens = tokens
        self._jwt = jwt
        self._audit = audit
        self.limiter = limiter or FailureLimiter(clock)
        self._ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}
        self._signing_keys: dict[str, bytes] = {}
        self._nonces = _NonceCache()

    def forget_all(self) -> None:
        """Drop every cached key (the security epoch moved)."""
        self._cache.clear()
        self._signing_keys.clear()

    def forget(self, key_uuid: str) -> None:
        """Drop one cached key."""
        self._cache.pop(key_uuid, None)
        self._signing_keys.pop(key_uuid, None)

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

    async def _fail(self, source: str, reason: str, key_uuid: str = "", namespace: str = "") -> UnauthenticatedError:
        delay = self.limiter.failed(source)
        # Invariant: the key uuid and the reason only; the presented secret is never reported.
        self._events.emit(
            SecurityEvent(
                type=EventType.AUTH_FAILED,
                severity=Severity.MEDIUM if key_uuid else Severity.LOW,
                time_ms=self._clock.now_ms(),
                namespace=namespace,
                subject=key_uuid,
                source="auth",
                details={"reason": reason, "client": source},
            )
        )
        if self._audit is not None:
            self._audit.record(
                AuditEvent(
                    PLATFORM_CHAIN, key_uuid or "anonymous", "auth.failed", "api", "denied", source, {"reason": reason}
                )
            )
        if delay:
            await asyncio.sleep(min(delay, 5.0))
        return UnauthenticatedError()

    async def authenticate(
        self, authorization: str | None, *, source: str = "", signed: SignedParts | None = None
    ) -> Credentials:
        """The caller's identity; 401 for missing or invalid credentials, 429 while locked out."""
        self.limiter.check(source)
        if not authorization:
            raise UnauthenticatedError(MISSING_AUTH_MESSAGE)
        scheme = authorization.split(" ", 1)[0].lower()
        if scheme == "bearer":
            return await self._bearer(authorization, source)
        if scheme == "stockade-hmac-sha256":
            return await self._signed(authorization, source, signed)
        parsed = parse_basic_auth(authorization)
        if parsed is None:
            raise await self._fail(source, "malformed credentials")
        user, secret = parsed
        if user.startswith(TOKEN_PREFIX):
            return await self._action_token(user, secret, source)
        if len(user) > 128 or len(secret) > 256:
            raise await self._fail(source, "oversized credentials")
        record = await self._record(user)
        if record is None or record.revoked is not None or not secret_matches(secret, record.key_hash):
            raise await self._fail(
                source,
                "invalid key",
                user if record is not None else "",
                record.namespace if record is not None else "",
            )
        return Credentials(Identity(record.subject, record.namespace, record.uuid))

    async def _action_token(self, user: str, secret: str, source: str) -> Credentials:
        claims = self._tokens.verify(user, secret, self._clock.now_ms()) if self._tokens else None
        if claims is None:
            raise await self._fail(source, "invalid or expired action token")
        identity = Identity(
            subject=f"{claims.action} (for {claims.subject})",
            namespace=claims.namespace,
            key_uuid="",
            kind="action_token",
            scope=claims.scope,
        )
        return Credentials(identity)

    async def _bearer(self, authorization: str, source: str) -> Credentials:
        token = authorization.split(" ", 1)[1].strip() if " " in authorization else ""
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
        return Credentials(identity)

    async def _signing_key(self, record: KeyRecord) -> bytes | None:
        cached = self._signing_keys.get(record.uuid)
        if cached is not None:
            return cached
        if self._vault is None:
            return None
        sealed = await self._store.get_key_hmac(record.uuid)
        if sealed is None:
            return None
        box = SealedBox.from_json(sealed)
        data_key = await self._vault.data_key(record.namespace, box.key_id)
        value = open_value(data_key, ValueContext(record.namespace, "api_keys", record.uuid, "signing"), box)
        key = bytes.fromhex(str(value))
        self._signing_keys[record.uuid] = key
        return key

    async def _signed(self, authorization: str, source: str, signed: SignedParts | None) -> Credentials:
        fields = parse_authorization(authorization)
        if fields is None or signed is None:
            raise await self._fail(source, "malformed signature header")
        now_s = self._clock.now_ms() / 1000
        try:
            timestamp = int(fields["Timestamp"])
        except ValueError:
            raise await self._fail(source, "malformed signature timestamp") from None
        if abs(now_s - timestamp) > SIGNATURE_WINDOW_S:
            raise await self._fail(source, "signature timestamp outside the allowed window")
        record = await self._record(fields["Credential"])
        key = await self._signing_key(record) if record is not None and record.revoked is None else None
        if record is None or key is None:
            raise await self._fail(source, "unknown signing key")
        expected = sign_request(
            key, signed.method, signed.path, signed.query, signed.body, fields["Timestamp"], fields["Nonce"]
        )
        if not hmac.compare_digest(expected.encode(), fields["Signature"].encode()):
            raise await self._fail(source, "bad signature", record.uuid)
        if not self._nonces.add(fields["Nonce"], now_s):
            raise await self._fail(source, "replayed signature", record.uuid)
        return Credentials(Identity(record.subject, record.namespace, record.uuid))

    async def try_authenticate(self, authorization: str | None, *, source: str = "") -> Credentials | None:
        """Like authenticate, but None for missing or invalid credentials (web actions)."""
        try:
            return await self.authenticate(authorization, source=source)
        except (UnauthenticatedError, ThrottledError):
            return None
