"""Packages and package bindings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from stockade.domain.entities import JSON, KeyValues, kv_to_json
from stockade.domain.names import EntityPath

__all__ = ["Binding", "Package"]


@final
@dataclass(frozen=True, slots=True)
class Binding:
    """The package a binding points at."""

    namespace: str
    name: str

    def to_json(self) -> dict[str, str]:
        """``{"namespace", "name"}``."""
        return {"namespace": self.namespace, "name": self.name}


@final
@dataclass(frozen=True, slots=True)
class Package:
    """A package (a folder of actions with shared parameters) or a binding to one."""

    path: EntityPath  # namespace + name; package is always None
    version: str = "0.0.1"
    publish: bool = False
    parameters: KeyValues = ()
    annotations: KeyValues = ()
    binding: Binding | None = None
    updated: int = 0

    @property
    def is_binding(self) -> bool:
        """True for a package binding."""
        return self.binding is not None

    def to_summary(self) -> dict[str, JSON]:
        """The list form: ``binding`` is false or the target."""
        return {
            "namespace": self.path.namespace,
            "name": self.path.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": kv_to_json(self.annotations),
            "binding": self.binding.to_json() if self.binding else False,
            "updated": self.updated,
        }

    def to_json(self) -> dict[str, JSON]:
        """The stored form with ``binding`` as ``{}`` or the target (actions/feeds added by the service)."""
        return {
            "namespace": self.path.namespace,
            "name": self.path.name,
            "version": self.version,
            "publish": self.publish,
            "parameters": kv_to_json(self.parameters),
            "annotations": kv_to_json(self.annotations),
            "binding": self.binding.to_json() if self.binding else {},
            "updated": self.updated,
        }
