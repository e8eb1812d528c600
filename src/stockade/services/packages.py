"""Package use cases: create, bind, update, get (with contents), list, delete."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stockade.config import LimitSettings
from stockade.domain import (
    JSON,
    Binding,
    EntityPath,
    Identity,
    Package,
    as_mapping,
    bump_version,
    check_kv_size,
    fingerprint_refs,
    kv_from_json,
    kv_get,
    kv_merge,
    kv_set,
    kv_to_json,
    parse_entity_fields,
    validate_entity_name,
    validate_namespace,
)
from stockade.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError
from stockade.security.authz import Permission
from stockade.services.access import forbidden
from stockade.services.catalog import Catalog
from stockade.services.records import package_from_doc, package_to_doc
from stockade.services.vault import ParameterVault
from stockade.store import Delete, Put, Write

__all__ = ["PackageService"]

_LIST_ALL = 10_000


class PackageService:
    """Create, bind, read, list and delete packages."""

    def __init__(self, catalog: Catalog, limits: LimitSettings, now_ms: Any, vault: ParameterVault) -> None:
        self._catalog = catalog
        self._vault = vault
        self._limits = limits
        self._now_ms = now_ms

    async def _binding(self, identity: Identity, raw: Any) -> Binding:
        body = as_mapping(raw, "binding")
        namespace, name = body.get("namespace"), body.get("name")
        if not isinstance(namespace, str) or not isinstance(name, str):
            raise BadRequestError("Binding references a package that does not exist.")
        namespace = identity.namespace if namespace in ("_", "") else validate_namespace(namespace)
        validate_entity_name(name)
        can_read = await self._catalog.access.allows(identity, namespace, Permission.READ)
        entity = await self._catalog.store.get_entity(namespace, name)
        if entity is None:
            if not can_read:
                raise forbidden(f"{namespace}/{name}")
            raise BadRequestError("Binding references a package that does not exist.")
        if entity.collection != "packages":
            if not can_read:
                raise forbidden(f"{namespace}/{name}")
            raise ConflictError("Cannot bind to a resource that is not a package.")
        target = package_from_doc(namespace, name, entity.updated, entity.doc)
        if not can_read and not target.publish:
            raise forbidden(f"{namespace}/{name}")
        if target.is_binding:
            raise BadRequestError("Cannot bind to another package binding.")
        return Binding(namespace, name)

    async def put(self, identity: Identity, path: EntityPath, body: Any, *, overwrite: bool) -> Package:
        """Create or update a package or binding."""
        await self._catalog.access.require(identity, path.namespace, Permission.WRITE, path.relative)
        if path.name == "default":
            raise BadRequestError("Package name 'default' is reserved.")
        payload = as_mapping(body, "body")
        existing = await self._catalog.get(path.namespace, path.name, "packages")
        if existing is not None and not overwrite:
            raise ConflictError("resource already exists")
        if existing is not None and self._catalog.integrity is not None:
            # An edited package must not be carried into a new, freshly stamped version.
            await self._catalog.integrity.verify(path.namespace, path.name, existing.doc, None, collection="packages")
        current = package_from_doc(path.namespace, path.name, existing.updated, existing.doc) if existing else None
        binding = await self._binding(identity, payload["binding"]) if payload.get("binding") else None
        if current is not None and binding is not None and not current.is_binding:
            raise ConflictError("Resource is a package and cannot be converted into a binding.")
        fields = parse_entity_fields(payload)
        version, publish, parameters, annotations = (
            fields.version,
            fields.publish,
            fields.parameters,
            fields.annotations,
        )
        if current is None:
            package = Package(
                path=path,
                version=version or "0.0.1",
                publish=bool(publish),
                parameters=parameters or (),
                annotations=annotations or (),
                binding=binding,
            )
        else:
            package = replace(
                current,
                version=version or bump_version(current.version),
                publish=current.publish if publish is None else publish,
                parameters=current.parameters if parameters is None else parameters,
                annotations=current.annotations if annotations is None else annotations,
                binding=binding or current.binding,
            )
        if package.binding is not None:
            package = replace(package, annotations=kv_set(package.annotations, "binding", package.binding.to_json()))
        package = replace(package, updated=self._now_ms())
        if fingerprint_refs(package.parameters):
            sources = self._catalog.sealed_sources(path.namespace, current.parameters if current else ())
            adopted = await self._vault.adopt(path.namespace, "packages", path.name, package.parameters, sources)
            package = replace(package, parameters=adopted)
        check_kv_size(package.parameters, "parameters", self._limits.max_parameters_bytes)
        check_kv_size(package.annotations, "annotations", self._limits.max_parameters_bytes)
        package = replace(
            package, parameters=await self._vault.seal(path.namespace, "packages", path.name, package.parameters)
        )
        doc = package_to_doc(package)
        if self._catalog.integrity is not None:
            doc = await self._catalog.integrity.stamp(path.namespace, path.name, doc, "packages")
        await self._catalog.store.apply(
            [
                Put(
                    path.namespace,
                    path.name,
                    "packages",
                    doc,
                    package.updated,
                    expected_revision=existing.revision if existing else None,
                )
            ]
        )
        return package

    async def _contents(self, package: Package) -> tuple[list[dict[str, JSON]], list[dict[str, JSON]]]:
        entities = await self._catalog.store.list_entities(
            package.path.namespace, "actions", package=package.path.name, skip=0, limit=_LIST_ALL
        )
        actions: list[dict[str, JSON]] = []
        feeds: list[dict[str, JSON]] = []
        for entity in entities:
            item = {
                "name": entity.name.split("/", 1)[1],
                "version": entity.doc["version"],
                "annotations": entity.doc.get("annotations", []),
            }
            annotations = kv_from_json(entity.doc.get("annotations"), "annotations")
            (feeds if kv_get(annotations, "feed") is not None else actions).append(item)
        return actions, feeds

    async def get(self, identity: Identity, namespace: str, name: str) -> dict[str, JSON]:
        """A package with its actions and feeds; a binding shows its target's, with merged parameters."""
        package = await self._catalog.readable_package(identity, namespace, name)
        doc = package.to_json()
        contents = package
        if package.binding is not None:
            try:
                target = await self._catalog.readable_package(identity, package.binding.namespace, package.binding.name)
            except (NotFoundError, ForbiddenError):
                target = None
            if target is not None:
                contents = target
                doc["parameters"] = kv_to_json(kv_merge(target.parameters, package.parameters))
        if contents.binding is None:
            actions, feeds = await self._contents(contents)
        else:
            actions, feeds = [], []
        doc["actions"] = actions
        doc["feeds"] = feeds
        return doc

    async def list(self, identity: Identity, namespace: str, *, skip: int, limit: int) -> list[dict[str, JSON]]:
        """Packages of a namespace; elsewhere only public, non-binding ones."""
        if await self._catalog.access.allows(identity, namespace, Permission.READ):
            entities = await self._catalog.store.list_entities(
                namespace, "packages", package="", skip=skip, limit=limit
            )
            return [package_from_doc(namespace, e.name, e.updated, e.doc).to_summary() for e in entities]
        entities = await self._catalog.store.list_entities(namespace, "packages", package="", skip=0, limit=_LIST_ALL)
        public = [package_from_doc(namespace, e.name, e.updated, e.doc) for e in entities]
        visible = [p for p in public if p.publish and not p.is_binding]
        return [p.to_summary() for p in visible[skip : skip + limit]]

    async def count(self, identity: Identity, namespace: str) -> int:
        """How many packages ``list`` would return without paging."""
        if await self._catalog.access.allows(identity, namespace, Permission.READ):
            return await self._catalog.store.count_entities(namespace, "packages", package="")
        return len(await self.list(identity, namespace, skip=0, limit=_LIST_ALL))

    async def delete(self, identity: Identity, path: EntityPath, *, force: bool) -> Package:
        """Delete a package (with ``force``, its actions first, in the same transaction)."""
        await self._catalog.access.require(identity, path.namespace, Permission.WRITE, path.relative)
        entity = await self._catalog.require(path.namespace, path.name, "packages")
        package = package_from_doc(path.namespace, path.name, entity.updated, entity.doc)
        writes: list[Write] = []
        if not package.is_binding:
            contents = await self._catalog.store.list_entities(
                path.namespace, "actions", package=path.name, skip=0, limit=_LIST_ALL
            )
            if contents and not force:
                n = len(contents)
                noun = "entity" if n == 1 else "entities"
                raise ConflictError(
                    f"Package not empty (contains {n} {noun}). Set force param or delete package contents."
                )
            writes.extend(Delete(path.namespace, e.name, e.revision) for e in contents)
            for e in contents:
                self._catalog.forget(path.namespace, e.name)
        writes.append(Delete(path.namespace, path.name, entity.revision))
        await self._catalog.store.apply(writes)
        return package
