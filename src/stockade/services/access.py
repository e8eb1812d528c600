"""Access control: who holds which role where, and the checks every use case makes.

Roles are looked up per (subject, namespace) and cached; every process polls the store's
security epoch (bumped by each revocation, role or policy change) and drops its caches when it
moves, so a revoked key or role stops working everywhere within one poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, final

import structlog

from stockade.domain import JSON, Clock, Identity, fqn_matches, validate_namespace
from stockade.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError
from stockade.security import ApiKey
from stockade.security.authz import ROLES, Permission, Role, RoleMatrix
from stockade.services.audit import AuditEvent, AuditLog
from stockade.store import AccessStore, KeyRecord, RoleBinding

__all__ = ["AccessService", "RoleStore", "SecurityEpoch", "forbidden"]

log = structlog.get_logger("stockade.access")


def forbidden(*paths: str) -> ForbiddenError:
    """OpenWhisk's 403 naming the resources that were refused."""
    joined = ", ".join(f"'{p}'" for p in paths)
    return ForbiddenError(f"The supplied authentication is not authorized to access {joined}.")


class SecurityEpoch:
    """Watches the store's security epoch and tells listeners when it moves."""

    def __init__(self, store: AccessStore, *, interval_s: float = 0.25) -> None:
        self._store = store
        self._interval_s = interval_s
        self._listeners: list[Callable[[], None]] = []
        self._epoch: int | None = None
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever the epoch changes."""
        self._listeners.append(listener)

    def changed(self) -> None:
        """A change made by this process: drop caches now."""
        for listener in self._listeners:
            listener()

    async def poll(self) -> None:
        """Read the epoch once; notify on a change."""
        epoch = await self._store.security_epoch()
        if self._epoch is not None and epoch != self._epoch:
            self.changed()
        self._epoch = epoch

    def start(self) -> None:
        """Poll in the background."""
        self._task = asyncio.create_task(self._run(), name="security-epoch")

    async def _run(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:
                log.exception("access.epoch_poll_failed")
            await asyncio.sleep(self._interval_s)

    async def close(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class RoleStore(AccessStore, Protocol):
    """What access control reads and writes: roles, protection, key listings and revocation."""

    async def get_key(self, uuid: str) -> KeyRecord | None:
        """A key's record."""

    async def revoke_key(self, uuid: str, when_ms: int) -> bool:
        """Revoke a key."""


@final
@dataclass(frozen=True, slots=True)
class _Cached:
    role: Role | None
    protected: bool


class AccessService:
    """Authorization checks and the management of roles, keys and namespace protection."""

    def __init__(
        self,
        store: RoleStore,
        matrix: RoleMatrix,
        epoch: SecurityEpoch,
        audit: AuditLog,
        clock: Clock,
        issue_key: Callable[..., Awaitable[ApiKey]],
        *,
        enforce: bool = True,
    ) -> None:
        self._store = store
        self._matrix = matrix
        self._epoch = epoch
        self._audit = audit
        self._clock = clock
        self._issue_key = issue_key
        # Benchmark-only switch (never set from settings): measures what the check costs.
        self._enforce = enforce
        self._cache: dict[tuple[str, str], _Cached] = {}
        epoch.subscribe(self._cache.clear)

    async def _lookup(self, subject: str, namespace: str) -> _Cached:
        key = (subject, namespace)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        role = await self._store.get_role(namespace, subject)
        protected = await self._store.is_protected(namespace)
        cached = _Cached(Role(role) if role in ROLES else None, protected)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[key] = cached
        return cached

    async def role_of(self, identity: Identity, namespace: str) -> Role | None:
        """The caller's role in ``namespace`` (JWT callers: their issuer's role in its namespace)."""
        if identity.kind == "jwt":
            return Role(identity.role) if identity.role in ROLES and namespace == identity.namespace else None
        if identity.kind != "key":
            return None
        return (await self._lookup(identity.subject, namespace)).role

    async def allows(
        self, identity: Identity, namespace: str, permission: Permission, *, fqn: str = "", coarse: bool = False
    ) -> bool:
        """Whether the caller may use ``permission`` in ``namespace`` (on action ``fqn`` for INVOKE).

        ``coarse`` (the route gate): a scoped caller's INVOKE is not matched against an action yet;
        the invoke use case checks the exact action once it is resolved.
        """
        if not self._enforce:
            return True
        if identity.kind == "owner":
            # Web actions run as their namespace: they may read and invoke there, nothing else.
            return namespace == identity.namespace and permission in (Permission.READ, Permission.INVOKE)
        if identity.scope is not None:
            # Scoped callers (action tokens, JWTs) only invoke what their scope names.
            if namespace != identity.namespace or permission not in (Permission.READ, Permission.INVOKE):
                return False
            if (
                permission is Permission.INVOKE
                and not coarse
                and not any(_scope_matches(s, fqn) for s in identity.scope)
            ):
                return False
            if identity.kind == "action_token":
                return True
        if identity.kind == "jwt":
            role = await self.role_of(identity, namespace)
            return self._matrix.allows(role, permission)
        cached = await self._lookup(identity.subject, namespace)
        return self._matrix.allows(cached.role, permission, protected=cached.protected)

    async def require(
        self, identity: Identity, namespace: str, permission: Permission, resource: str, *, fqn: str = ""
    ) -> None:
        """Raise OpenWhisk's 403 unless allowed (the same answer whether or not the resource exists)."""
        if not await self.allows(identity, namespace, permission, fqn=fqn):
            raise forbidden(resource)

    # -- management --------------------------------------------------------------------------------

    async def list_roles(self, identity: Identity, namespace: str) -> list[dict[str, JSON]]:
        """Role bindings of a namespace."""
        await self.require(identity, namespace, Permission.ROLES, f"{namespace}/roles")
        return [
            {"subject": b.subject, "role": b.role, "grantedBy": b.granted_by, "created": b.created}
            for b in await self._store.list_roles(namespace)
        ]

    async def grant(self, identity: Identity, namespace: str, subject: str, role: str) -> dict[str, JSON]:
        """Give ``subject`` a role (replacing its old one)."""
        await self.require(identity, namespace, Permission.ROLES, f"{namespace}/roles")
        if role not in ROLES:
            raise BadRequestError(f"role must be one of {', '.join(ROLES)}")
        if not subject or len(subject) > 256:
            raise BadRequestError("subject must be 1 to 256 characters")
        if role != Role.OWNER.value:
            await self._keep_an_owner(namespace, subject)
        binding = RoleBinding(namespace, subject, role, identity.subject, self._clock.now_ms())
        await self._store.put_role(binding)
        self._epoch.changed()
        return {"subject": subject, "role": role, "grantedBy": identity.subject, "created": binding.created}

    async def _keep_an_owner(self, namespace: str, subject: str) -> None:
        owners = [b.subject for b in await self._store.list_roles(namespace) if b.role == Role.OWNER.value]
        if owners == [subject]:
            raise ConflictError("A namespace must keep at least one owner.")

    async def revoke_role(self, identity: Identity, namespace: str, subject: str) -> None:
        """Remove ``subject``'s role."""
        await self.require(identity, namespace, Permission.ROLES, f"{namespace}/roles")
        await self._keep_an_owner(namespace, subject)
        if not await self._store.delete_role(namespace, subject):
            raise NotFoundError()
        self._epoch.changed()

    async def issue_key(
        self, identity: Identity, namespace: str, subject: str, role: str | None, *, source: str = ""
    ) -> ApiKey:
        """A new key for ``subject`` in ``namespace`` (granting ``role`` if given); audited."""
        await self.require(identity, namespace, Permission.ROLES, f"{namespace}/keys")
        if role is not None:
            await self.grant(identity, namespace, subject, role)
        else:
            role = await self._store.get_role(namespace, subject)
            if role is None:
                raise BadRequestError(f"subject '{subject}' has no role in '{namespace}': give one with 'role'")
        return await self._issue_key(namespace, subject, actor=identity.subject, role=role, source=source)

    async def list_keys(self, identity: Identity, namespace: str) -> list[dict[str, JSON]]:
        """Keys of a namespace (uuids and metadata only)."""
        await self.require(identity, namespace, Permission.ROLES, f"{namespace}/keys")
        return [
            {"uuid": k.uuid, "subject": k.subject, "created": k.created, "revoked": k.revoked}
            for k in await self._store.list_keys(namespace)
        ]

    async def revoke_key(self, identity: Identity, namespace: str, key_uuid: str) -> None:
        """Revoke a key of the namespace; it stops working on every process within one poll."""
        await self.require(identity, namespace, Permission.ROLES, f"{namespace}/keys")
        record = await self._store.get_key(key_uuid)
        if record is None or record.namespace != namespace:
            raise NotFoundError()
        await self._store.revoke_key(key_uuid, self._clock.now_ms())
        self._epoch.changed()

    async def set_protected(self, identity: Identity, namespace: str, protected: bool) -> dict[str, JSON]:
        """Turn namespace protection on or off (only deployers may then change entities)."""
        await self.require(identity, namespace, Permission.ROLES, f"{namespace}/policy")
        await self._store.set_protected(namespace, protected, self._clock.now_ms())
        self._epoch.changed()
        return {"namespace": namespace, "protected": protected}

    async def policy(self, identity: Identity, namespace: str) -> dict[str, JSON]:
        """The namespace policy."""
        validate_namespace(namespace)
        await self.require(identity, namespace, Permission.READ, f"{namespace}/policy")
        return {"namespace": namespace, "protected": await self._store.is_protected(namespace)}

    def audit(self, event: AuditEvent) -> None:
        """Record an event in the audit log."""
        self._audit.record(event)


def _scope_matches(scope: str, fqn: str) -> bool:
    """``invoke:/ns/pkg/act`` (or a bare FQN pattern) against an action FQN."""
    pattern = scope.removeprefix("invoke:")
    return bool(fqn) and fqn_matches(pattern, fqn)
