"""The system namespace ``whisk.system`` and its catalog (``utils``, ``samples``).

Created on first start and brought up to date on every start: packages are published (readable
and bindable from every namespace, their actions invocable through them) and owned by the
platform subject only, so tenants can read and invoke but never write there. The actions are
Python written for Stockade (``runtimes/catalog``), with OpenWhisk's catalog names, parameters and
results; they run in the sandbox like any action.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, final

import structlog

from stockade.domain import JSON, Clock, EntityPath, Identity, Namespace
from stockade.errors import ConflictError, PlatformError
from stockade.services.actions import ActionService
from stockade.services.audit import AuditEvent, AuditLog
from stockade.services.catalog import Catalog
from stockade.services.packages import PackageService
from stockade.store import RoleBinding

__all__ = ["SYSTEM_NAMESPACE", "SYSTEM_SUBJECT", "CatalogAction", "SystemCatalog", "load_catalog"]

SYSTEM_NAMESPACE: Final = "whisk.system"
# The only subject with a role in the system namespace (an operator may issue it keys with
# `stockade admin key-create whisk.system whisk.system`); tenants have none there.
SYSTEM_SUBJECT: Final = "whisk.system"
CATALOG_DIR: Final = Path(__file__).resolve().parent.parent / "runtimes" / "catalog"
CATALOG_KIND: Final = "python:3"
_log = structlog.get_logger("stockade.system")


class SystemStore(Protocol):
    """What installing the system namespace needs from the store."""

    async def get_namespace(self, name: str) -> Namespace | None:
        """The namespace called ``name``."""

    async def create_namespace(self, namespace: Namespace) -> None:
        """Create a namespace; ConflictError if it exists."""

    async def put_role(self, binding: RoleBinding) -> None:
        """Give a subject a role in a namespace."""


@final
@dataclass(frozen=True, slots=True)
class CatalogAction:
    """One catalog action: where it goes, its code and its annotations."""

    package: str
    name: str
    code: str
    annotations: tuple[tuple[str, JSON], ...]


def load_catalog(directory: Path = CATALOG_DIR) -> tuple[dict[str, str], list[CatalogAction]]:
    """Package descriptions and actions from ``catalog.json`` and the code files next to it."""
    spec: dict[str, Any] = json.loads((directory / "catalog.json").read_text())
    packages: dict[str, str] = {}
    actions: list[CatalogAction] = []
    for package, body in spec["packages"].items():
        packages[package] = body["description"]
        for name, meta in body["actions"].items():
            code = (directory / package / f"{name}.py").read_text()
            annotations = tuple(
                (key, meta[key]) for key in ("description", "parameters", "sampleInput", "sampleOutput") if key in meta
            )
            actions.append(CatalogAction(package, name, code, annotations))
    return packages, actions


def _kv(pairs: tuple[tuple[str, JSON], ...]) -> list[dict[str, JSON]]:
    return [{"key": k, "value": v} for k, v in pairs]


class SystemCatalog:
    """Creates ``whisk.system`` and writes its catalog where it is missing or out of date."""

    def __init__(
        self,
        store: SystemStore,
        catalog: Catalog,
        packages: PackageService,
        actions: ActionService,
        clock: Clock,
        audit: AuditLog | None = None,
    ) -> None:
        self._audit = audit
        self._store = store
        self._catalog = catalog
        self._packages = packages
        self._actions = actions
        self._clock = clock
        self.identity = Identity(SYSTEM_SUBJECT, SYSTEM_NAMESPACE, "", "key")

    async def ensure_namespace(self) -> bool:
        """Create the system namespace (owned by the platform subject, no key issued); True if new."""
        if await self._store.get_namespace(SYSTEM_NAMESPACE) is not None:
            return False
        now = self._clock.now_ms()
        try:
            await self._store.create_namespace(Namespace(SYSTEM_NAMESPACE, str(uuid.uuid4()), now))
        except ConflictError:
            return False  # another process created it meanwhile
        await self._store.put_role(RoleBinding(SYSTEM_NAMESPACE, SYSTEM_SUBJECT, "owner", "platform", now))
        return True

    async def install(self) -> list[str]:
        """Bring the catalog up to date; returns what was written (empty when nothing changed)."""
        await self.ensure_namespace()
        descriptions, actions = load_catalog()
        written: list[str] = []
        for package, description in descriptions.items():
            annotations = (("description", description),)
            entity = await self._catalog.get(SYSTEM_NAMESPACE, package, "packages")
            if entity is None or not entity.doc.get("publish") or entity.doc.get("annotations") != _kv(annotations):
                body = {"publish": True, "annotations": _kv(annotations)}
                try:
                    await self._packages.put(self.identity, self._path(package), body, overwrite=True)
                except PlatformError as exc:  # e.g. another process writing it at the same moment
                    _log.warning("system.catalog_package_refused", package=package, reason=exc.message)
                    continue
                written.append(package)
        for action in actions:
            key = f"{action.package}/{action.name}"
            entity = await self._catalog.get(SYSTEM_NAMESPACE, key, "actions")
            digest = hashlib.sha256(action.code.encode()).hexdigest()
            if entity is not None and entity.doc["exec"].get("codeDigest") == digest:
                continue
            body = {
                "exec": {"kind": CATALOG_KIND, "code": action.code},
                "annotations": _kv(action.annotations),
                "publish": True,
            }
            try:
                await self._actions.put(self.identity, self._path(action.package, action.name), body, overwrite=True)
            except PlatformError as exc:
                # One catalog action refused (e.g. a stricter scan policy) must not stop the platform.
                _log.warning("system.catalog_action_refused", action=key, reason=exc.message)
                continue
            written.append(key)
        if written:
            _log.info("system.catalog_installed", namespace=SYSTEM_NAMESPACE, written=written)
            if self._audit is not None:
                self._audit.record(
                    AuditEvent(
                        namespace=SYSTEM_NAMESPACE,
                        actor=SYSTEM_SUBJECT,
                        action="system.catalog_installed",
                        resource=f"/{SYSTEM_NAMESPACE}",
                        outcome="ok",
                        details={"written": list(written)},
                    )
                )
        return written

    @staticmethod
    def _path(package: str, name: str | None = None) -> EntityPath:
        return EntityPath(SYSTEM_NAMESPACE, package) if name is None else EntityPath(SYSTEM_NAMESPACE, name, package)
