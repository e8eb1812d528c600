"""Typed reads of entities, with collection checks, access rules and a small action cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import final

from stockade.domain import Action, Clock, EntityPath, Identity, KeyValue, KeyValues, Package, Rule, Trigger
from stockade.errors import ConflictError, NotFoundError
from stockade.security.authz import Permission
from stockade.services.access import AccessService, forbidden
from stockade.services.integrity import ActionIntegrity
from stockade.services.records import (
    action_from_doc,
    package_from_doc,
    params_from_doc,
    rule_from_doc,
    trigger_from_doc,
)
from stockade.store import Collection, Store, StoredEntity

__all__ = ["WRONG_COLLECTION", "Catalog", "ResolvedAction", "forbidden"]

WRONG_COLLECTION = "Resource by this name exists but is not in this collection."


@final
@dataclass(frozen=True, slots=True)
class ResolvedAction:
    """An action found through a path, with the package parameters that apply to it."""

    action: Action
    package: Package | None  # the package that contains the action
    binding: Package | None  # the binding named in the path, if any

    @property
    def binding_path(self) -> str | None:
        """``ns/binding`` when invoked through a binding."""
        return self.binding.path.relative if self.binding else None


class Catalog:
    """Reads entities for services; caches actions (with code) for the invoke path.

    Invariant: a cached action is dropped on every write through this process (``forget``)
    and expires after ``cache_ttl_s`` so writes from other API processes become visible.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        access: AccessService,
        cache_ttl_s: float = 2.0,
        *,
        integrity: ActionIntegrity | None = None,
    ) -> None:
        self.store = store
        self.access = access
        self.integrity = integrity
        self._clock = clock
        self._ttl_s = cache_ttl_s
        self._actions: dict[tuple[str, str], tuple[float, int, Action]] = {}

    def forget(self, namespace: str, name: str) -> None:
        """Drop cached copies after a write."""
        self._actions.pop((namespace, name), None)

    async def get(self, namespace: str, name: str, collection: Collection) -> StoredEntity | None:
        """The entity, None if absent; 409 if the name belongs to another collection."""
        entity = await self.store.get_entity(namespace, name)
        if entity is not None and entity.collection != collection:
            raise ConflictError(WRONG_COLLECTION)
        return entity

    async def require(self, namespace: str, name: str, collection: Collection) -> StoredEntity:
        """The entity or 404."""
        entity = await self.get(namespace, name, collection)
        if entity is None:
            raise NotFoundError()
        return entity

    async def sealed_sources(self, namespace: str, first: KeyValues = ()) -> AsyncIterator[KeyValue]:
        """Where a fingerprint sent back may come from: ``first`` (the entity being updated), then
        every parameter of the namespace's actions, packages and triggers (read lazily, by pages)."""
        for kv in first:
            yield kv
        page_size = 500
        collections: tuple[Collection, ...] = ("actions", "packages", "triggers")
        for collection in collections:
            skip = 0
            while True:
                page = await self.store.list_entities(namespace, collection, package=None, skip=skip, limit=page_size)
                for entity in page:
                    for kv in params_from_doc(entity.doc.get("parameters"), namespace, collection, entity.name):
                        yield kv
                if len(page) < page_size:
                    break
                skip += page_size

    async def action_from(self, entity: StoredEntity, *, verify: bool = True) -> Action:
        """Decode a stored action, loading its code; verified against its integrity stamp
        (IntegrityError when edited) unless ``verify`` is False (deleting a tampered action)."""
        exec_doc = entity.doc["exec"]
        code = ""
        blob: bytes | None = None
        if exec_doc.get("codeDigest"):
            blob = await self.store.get_code(exec_doc["codeDigest"])
        if verify and self.integrity is not None:
            await self.integrity.verify(entity.namespace, entity.name, entity.doc, blob)
        if blob is not None:
            code = blob.decode()
        return action_from_doc(entity.namespace, entity.name, entity.updated, entity.doc, code)

    async def action(self, namespace: str, name: str) -> Action:
        """The current action at ``namespace/name`` (cached for the invoke path), or 404."""
        key = (namespace, name)
        hit = self._actions.get(key)
        now = self._clock.monotonic()
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[2]
        entity = await self.require(namespace, name, "actions")
        action = await self.action_from(entity)
        if len(self._actions) > 4096:
            self._actions.clear()
        self._actions[key] = (now, entity.revision, action)
        return action

    async def package(self, namespace: str, name: str) -> Package:
        """A package or binding, or 404."""
        entity = await self.require(namespace, name, "packages")
        if self.integrity is not None:
            await self.integrity.verify(namespace, name, entity.doc, None, collection="packages")
        return package_from_doc(namespace, name, entity.updated, entity.doc)

    async def trigger(self, namespace: str, name: str) -> Trigger:
        """A trigger, or 404."""
        entity = await self.require(namespace, name, "triggers")
        return trigger_from_doc(namespace, name, entity.updated, entity.doc)

    async def rule(self, namespace: str, name: str) -> Rule:
        """A rule, or 404."""
        entity = await self.require(namespace, name, "rules")
        return rule_from_doc(namespace, name, entity.updated, entity.doc)

    async def readable_package(self, identity: Identity, namespace: str, name: str) -> Package:
        """A package the caller may read: by role, or a public one elsewhere (else 403)."""
        if await self.access.allows(identity, namespace, Permission.READ):
            return await self.package(namespace, name)
        if identity.scope is not None:
            raise forbidden(f"{namespace}/{name}")
        try:
            package = await self.package(namespace, name)
        except (NotFoundError, ConflictError):
            raise forbidden(f"{namespace}/{name}") from None
        if not package.publish or package.is_binding:
            raise forbidden(f"{namespace}/{name}")
        return package

    async def resolve_action(
        self, identity: Identity, path: EntityPath, permission: Permission = Permission.READ
    ) -> ResolvedAction:
        """Find the action a path names, following a package binding, checking access.

        By role in the action's namespace; elsewhere only actions inside public packages may be
        read or invoked. Any other access is a 403 whether or not the entity exists (no
        existence leak).
        """
        allowed = await self.access.allows(identity, path.namespace, permission, fqn=path.fqn)
        if path.package is None:
            if not allowed:
                raise forbidden(path.relative)
            return ResolvedAction(await self.action(path.namespace, path.name), None, None)
        if not allowed and (identity.scope is not None or permission not in (Permission.READ, Permission.INVOKE)):
            raise forbidden(path.relative)
        package = await self.readable_package(identity, path.namespace, path.package)
        binding: Package | None = None
        if package.binding is not None:
            binding = package
            target_ns, target_name = package.binding.namespace, package.binding.name
            try:
                package = await self.readable_package(identity, target_ns, target_name)
            except NotFoundError:
                raise NotFoundError() from None
        action = await self.action(package.path.namespace, f"{package.path.name}/{path.name}")
        return ResolvedAction(action, package, binding)
