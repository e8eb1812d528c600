"""The secrets store: namespaced, versioned, sealed at rest; values reach actions only.

Actions reference secrets by name in their ``secrets`` annotation (``{"ENV_VAR": "name"}``);
the latest version is opened for each activation of such an action, put in its environment
for that run, and the access is recorded. No API returns a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, final

import structlog

from stockade.domain import JSON, Action, Clock, Identity, validate_entity_name
from stockade.errors import BadRequestError, ConflictError, NotFoundError, PayloadTooLargeError
from stockade.security.authz import Permission
from stockade.services.access import AccessService, forbidden
from stockade.services.audit import AuditEvent, AuditLog
from stockade.services.vault import ParameterVault
from stockade.store.keymaterial import KeyMaterialStore, SecretAccess, SecretRecord

__all__ = ["SECRETS_ANNOTATION", "SecretBackend", "SecretService", "StoreSecretBackend", "parse_secret_refs"]

log = structlog.get_logger("stockade.secrets")

SECRETS_ANNOTATION = "secrets"
MAX_SECRET_BYTES = 64 * 1024
_ENV_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,127}\Z")


@final
@dataclass(frozen=True, slots=True)
class SecretValue:
    """An opened secret: its version and value (never logged or returned by an API)."""

    name: str
    version: int
    value: str

    def __repr__(self) -> str:
        return f"SecretValue(name={self.name!r}, version={self.version}, value=<redacted>)"


class SecretBackend(Protocol):
    """Where secret values live: the built-in store, or an external one (Vault, a cloud KMS)."""

    async def put(self, namespace: str, name: str, value: str, subject: str) -> SecretRecord:
        """Store a new version and return its metadata record."""

    async def latest(self, namespace: str, name: str) -> SecretRecord | None:
        """Metadata of the latest version."""

    async def open(self, record: SecretRecord) -> SecretValue:
        """The value of one version."""

    async def versions(self, namespace: str, name: str) -> list[SecretRecord]:
        """Every version, newest first."""

    async def names(self, namespace: str) -> list[SecretRecord]:
        """Latest version of each secret."""

    async def delete(self, namespace: str, name: str) -> int:
        """Delete every version."""


class StoreSecretBackend:
    """Secrets sealed with the namespace data key, in the platform's own store."""

    def __init__(self, store: KeyMaterialStore, vault: ParameterVault, clock: Clock) -> None:
        self._store = store
        self._vault = vault
        self._clock = clock

    async def put(self, namespace: str, name: str, value: str, subject: str) -> SecretRecord:
        """New version = latest + 1; a concurrent writer gets a conflict rather than a lost write."""
        latest = await self._store.get_secret(namespace, name)
        version = 1 if latest is None else latest.version + 1
        context = (namespace, "secrets", name, str(version))
        sealed = await self._vault.seal_json(namespace, context, value)
        record = SecretRecord(namespace, name, version, dict(sealed), self._clock.now_ms(), subject)
        await self._store.put_secret(record)
        return record

    async def latest(self, namespace: str, name: str) -> SecretRecord | None:
        """Latest version."""
        return await self._store.get_secret(namespace, name)

    async def open(self, record: SecretRecord) -> SecretValue:
        """Decrypt one version (bound to its namespace, name and version)."""
        context = (record.namespace, "secrets", record.name, str(record.version))
        value = await self._vault.open_json(context, {k: str(v) for k, v in record.sealed.items()})
        return SecretValue(record.name, record.version, str(value))

    async def versions(self, namespace: str, name: str) -> list[SecretRecord]:
        """All versions."""
        return await self._store.list_secret_versions(namespace, name)

    async def names(self, namespace: str) -> list[SecretRecord]:
        """Latest versions."""
        return await self._store.list_secrets(namespace)

    async def delete(self, namespace: str, name: str) -> int:
        """Delete all versions."""
        return await self._store.delete_secret(namespace, name)


def parse_secret_refs(raw: JSON) -> dict[str, str]:
    """Validate a ``secrets`` annotation: an object of environment variable → secret name."""
    if not isinstance(raw, dict):
        raise BadRequestError(f"The annotation '{SECRETS_ANNOTATION}' must be an object of ENV_NAME: secret-name.")
    refs: dict[str, str] = {}
    for env, name in raw.items():
        if not _ENV_NAME.match(env) or env.startswith("__OW_"):
            raise BadRequestError(f"'{env}' is not a valid environment variable name for a secret.")
        if not isinstance(name, str):
            raise BadRequestError(f"The secret reference for '{env}' must be a secret name.")
        validate_entity_name(name)
        refs[env] = name
    return refs


def _metadata(record: SecretRecord) -> dict[str, JSON]:
    return {
        "name": record.name,
        "version": record.version,
        "created": record.created,
        "createdBy": record.subject,
        "fingerprint": record.sealed.get("fp", ""),
    }


class SecretService:
    """Use cases of the secrets store."""

    def __init__(
        self,
        store: KeyMaterialStore,
        backend: SecretBackend,
        clock: Clock,
        access: AccessService,
        *,
        audit: AuditLog | None = None,
    ) -> None:
        self._access = access
        self._audit = audit
        self._store = store
        self._backend = backend
        self._clock = clock

    async def _own(self, identity: Identity, namespace: str) -> None:
        await self._access.require(identity, namespace, Permission.SECRETS, f"{namespace}/secrets")

    async def put(
        self, identity: Identity, namespace: str, name: str, body: Any, *, mode: Literal["create", "set", "rotate"]
    ) -> dict[str, JSON]:
        """``create``: new secret (409 if it exists); ``set``: create or add a version;
        ``rotate``: add a version to an existing secret (404 if there is none)."""
        await self._own(identity, namespace)
        validate_entity_name(name)
        if not isinstance(body, Mapping) or not isinstance(body.get("value"), str) or not body["value"]:
            raise BadRequestError("The request content was malformed:\n'value' must be a non-empty string")
        value: str = body["value"]
        size = len(value.encode())
        if size > MAX_SECRET_BYTES:
            raise PayloadTooLargeError(f"secret larger than allowed: {size} > {MAX_SECRET_BYTES} bytes.")
        existing = await self._backend.latest(namespace, name)
        if mode == "rotate" and existing is None:
            raise NotFoundError()
        if mode == "create" and existing is not None:
            raise ConflictError("resource already exists")
        record = await self._backend.put(namespace, name, value, identity.subject)
        log.info("secret.written", namespace=namespace, secret=name, version=record.version, subject=identity.subject)
        return _metadata(record)

    async def get(self, identity: Identity, namespace: str, name: str) -> dict[str, JSON]:
        """Metadata of a secret: versions and recent accesses, never the value."""
        await self._own(identity, namespace)
        versions = await self._backend.versions(namespace, name)
        if not versions:
            raise NotFoundError()
        accesses = await self._store.list_secret_access(namespace, name, limit=20)
        return {
            **_metadata(versions[0]),
            "versions": [_metadata(v) for v in versions],
            "recentAccess": [
                {"version": a.version, "action": a.accessor, "activationId": a.activation_id, "at": a.accessed}
                for a in accesses
            ],
        }

    async def list(self, identity: Identity, namespace: str) -> list[dict[str, JSON]]:
        """Every secret's latest version metadata."""
        await self._own(identity, namespace)
        return [_metadata(r) for r in await self._backend.names(namespace)]

    async def delete(self, identity: Identity, namespace: str, name: str) -> dict[str, JSON]:
        """Delete all versions of a secret."""
        await self._own(identity, namespace)
        latest = await self._backend.latest(namespace, name)
        if latest is None:
            raise NotFoundError()
        await self._backend.delete(namespace, name)
        log.info("secret.deleted", namespace=namespace, secret=name, subject=identity.subject)
        return _metadata(latest)

    async def check_refs(self, namespace: str, raw: JSON) -> None:
        """At deploy: the ``secrets`` annotation is well formed and names existing secrets."""
        for env, name in parse_secret_refs(raw).items():
            if await self._backend.latest(namespace, name) is None:
                raise BadRequestError(f"secret '{name}' (for {env}) does not exist in namespace '{namespace}'")

    async def authorize_wiring(self, identity: Identity, action: Action, *, source: str = "") -> None:
        """Declaring secrets on an action is a use of them (the action's code reads them): it needs
        SECRETS in the namespace. A refusal is audited and answered with the usual 403."""
        names = sorted(set(parse_secret_refs(action.annotation(SECRETS_ANNOTATION)).values()))
        namespace = action.path.namespace
        if await self._access.allows(identity, namespace, Permission.SECRETS):
            return
        if self._audit is not None:
            self._audit.record(
                AuditEvent(
                    namespace,
                    identity.subject,
                    "secret.wiring_refused",
                    action.path.fqn,
                    "denied",
                    source,
                    {"secrets": list(names)},
                )
            )
        log.warning("secret.wiring_refused", namespace=namespace, action=action.path.fqn, subject=identity.subject)
        raise forbidden(f"{namespace}/secrets")

    def wired(self, identity: Identity, action: Action, *, source: str = "") -> None:
        """Audit the secrets an action version was written with."""
        names = sorted(set(parse_secret_refs(action.annotation(SECRETS_ANNOTATION)).values()))
        if self._audit is not None and names:
            self._audit.record(
                AuditEvent(
                    action.path.namespace,
                    identity.subject,
                    "secret.wired",
                    action.path.fqn,
                    "ok",
                    source,
                    {"secrets": list(names), "version": action.version},
                )
            )

    async def for_activation(self, action: Action, activation_id: str) -> dict[str, str]:
        """The environment of secrets an action declared, opened for one run; records each access."""
        raw = action.annotation(SECRETS_ANNOTATION)
        if raw is None:
            return {}
        env: dict[str, str] = {}
        accesses: list[SecretAccess] = []
        now = self._clock.now_ms()
        for var, name in parse_secret_refs(raw).items():
            record = await self._backend.latest(action.path.namespace, name)
            if record is None:
                raise NotFoundError(f"secret '{name}' referenced by the action does not exist")
            opened = await self._backend.open(record)
            env[var] = opened.value
            accesses.append(
                SecretAccess(action.path.namespace, name, record.version, action.path.fqn, activation_id, now)
            )
        await self._store.record_secret_access(accesses)
        for access in accesses:
            log.info(
                "secret.accessed",
                namespace=access.namespace,
                secret=access.name,
                version=access.version,
                action=access.accessor,
                activation_id=activation_id,
            )
        return env
