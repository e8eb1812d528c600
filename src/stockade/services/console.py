"""Web-console sessions: an API key or a JWT exchanged for a short-lived session token.

Sign-in goes through the ``Authenticator`` (the same checks, lockout and audit as the API). The
session token is 256 random bits, handed to the browser once (an HttpOnly cookie) and stored
only as its SHA-256. Every request resumes the session from the store, so it holds on every
controller; a session ends at its expiry (never later than the JWT it came from), at sign-out,
or as soon as the key it came from is revoked (checked on every request, not cached). Roles are
not copied into the session: every view asks ``AccessService`` again, so a revoked role stops
working with the security epoch exactly as for the API.

The CSRF token of a session is HMAC-SHA256 of a fixed label under the session token: only the
holder of the (HttpOnly) token can compute it, and it is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final, Protocol, final

import structlog

from stockade.domain import Clock, Identity
from stockade.errors import ForbiddenError, UnauthenticatedError
from stockade.services.audit import AuditEvent, AuditLog
from stockade.services.auth import Authenticator
from stockade.store import ConsoleSession, KeyRecord

__all__ = ["ConsoleSessions", "NewSession", "SessionStore", "csrf_token_for"]

log = structlog.get_logger("stockade.console")

SESSION_EXPIRED: Final = "The console session has expired or was ended; sign in again."
_CSRF_LABEL: Final = b"stockade-console-csrf-v1"
_TOKEN_BYTES: Final = 32
_MAX_TOKEN_CHARS: Final = 128
# Sessions shorter than this are not worth creating (a JWT about to expire).
_MIN_SESSION_MS: Final = 5_000


class SessionStore(Protocol):
    """What sessions need of the store: their rows and the key records they came from."""

    async def put_console_session(self, session: ConsoleSession) -> None:
        """Insert a session."""

    async def get_console_session(self, token_hash: str) -> ConsoleSession | None:
        """A session by token hash."""

    async def delete_console_session(self, token_hash: str) -> bool:
        """Remove a session."""

    async def purge_console_sessions(self, now_ms: int) -> int:
        """Remove expired sessions."""

    async def get_key(self, uuid: str) -> KeyRecord | None:
        """An API key record (to see whether it was revoked)."""


@final
@dataclass(frozen=True, slots=True)
class NewSession:
    """What the browser receives once: the token (cookie) and its CSRF token."""

    token: str
    csrf: str
    identity: Identity
    expires_ms: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token_for(token: str) -> str:
    """The session's CSRF token (derived from the secret session token)."""
    return hmac.new(token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


class ConsoleSessions:
    """Sign-in, resume, CSRF check and sign-out of console sessions."""

    def __init__(self, store: SessionStore, auth: Authenticator, audit: AuditLog, clock: Clock, *, ttl_s: int) -> None:
        self._store = store
        self._auth = auth
        self._audit = audit
        self._clock = clock
        self._ttl_ms = max(1, ttl_s) * 1000

    async def sign_in(self, authorization: str, *, source: str) -> NewSession:
        """Authenticate like the API (401/429) and open a session; only keys and JWTs may sign in."""
        credentials = await self._auth.authenticate(authorization, source=source)
        identity = credentials.identity
        if identity.kind not in ("key", "jwt"):
            raise ForbiddenError("Only an API key or a JWT can sign in to the console.")
        now = self._clock.now_ms()
        expires = now + self._ttl_ms
        if credentials.expires_ms is not None:
            expires = min(expires, credentials.expires_ms)
        if expires - now < _MIN_SESSION_MS:
            raise UnauthenticatedError("The credentials expire too soon to open a console session.")
        await self._store.purge_console_sessions(now)
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        await self._store.put_console_session(
            ConsoleSession(
                token_hash=_hash(token),
                namespace=identity.namespace,
                subject=identity.subject,
                key_uuid=identity.key_uuid,
                kind=identity.kind,
                role=identity.role,
                scope=identity.scope,
                created=now,
                expires=expires,
            )
        )
        self._audit.record(
            AuditEvent(identity.namespace, identity.subject, "console.sign_in", "/console", "ok", source)
        )
        log.info("console.sign_in", namespace=identity.namespace, subject=identity.subject, kind=identity.kind)
        return NewSession(token, csrf_token_for(token), identity, expires)

    async def resume(self, token: str | None) -> Identity:
        """The identity of a live session; 401 when missing, unknown, expired or its key was revoked."""
        if not token or len(token) > _MAX_TOKEN_CHARS:
            raise UnauthenticatedError(SESSION_EXPIRED)
        token_hash = _hash(token)
        session = await self._store.get_console_session(token_hash)
        if session is None:
            raise UnauthenticatedError(SESSION_EXPIRED)
        if session.expires <= self._clock.now_ms():
            await self._store.delete_console_session(token_hash)
            raise UnauthenticatedError(SESSION_EXPIRED)
        if session.kind == "key":
            # Invariant: read from the store on every request, so a revoked key ends its sessions at once.
            record = await self._store.get_key(session.key_uuid)
            if record is None or record.revoked is not None:
                await self._store.delete_console_session(token_hash)
                raise UnauthenticatedError(SESSION_EXPIRED)
        return Identity(
            subject=session.subject,
            namespace=session.namespace,
            key_uuid=session.key_uuid,
            kind="jwt" if session.kind == "jwt" else "key",
            scope=session.scope,
            role=session.role,
        )

    @staticmethod
    def csrf_token(token: str) -> str:
        """The CSRF token of the session ``token`` (for its forms)."""
        return csrf_token_for(token)

    @staticmethod
    def csrf_matches(token: str, presented: str | None) -> bool:
        """Whether ``presented`` is the session's CSRF token (constant-time)."""
        if not presented or len(presented) > 128:
            return False
        return hmac.compare_digest(csrf_token_for(token).encode(), presented.encode())

    async def sign_out(self, token: str, identity: Identity, *, source: str) -> None:
        """End the session now."""
        await self._store.delete_console_session(_hash(token))
        self._audit.record(
            AuditEvent(identity.namespace, identity.subject, "console.sign_out", "/console", "ok", source)
        )
