"""Entity names and fully qualified paths, with OpenWhisk's validation rules and messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import final

from stockade.errors import BadRequestError

__all__ = [
    "ActivationId",
    "EntityPath",
    "is_valid_name",
    "parse_activation_id",
    "parse_fqn",
    "validate_entity_name",
    "validate_namespace",
]

# Invariant: ASCII \w only, 1..256 chars, no trailing space (OpenWhisk's code, not its docs).
_NAME_RE = re.compile(r"\A([\w]|[\w][\w@ .&-]{0,254}[\w@.&-])\Z", re.ASCII)
_ACTIVATION_ID_RE = re.compile(r"\A[0-9a-f]{32}\Z")
MAX_NAME_LENGTH = 256

ActivationId = str


def is_valid_name(name: str) -> bool:
    """True when ``name`` matches the OpenWhisk entity name pattern."""
    return bool(_NAME_RE.match(name))


def validate_entity_name(name: str) -> str:
    """Return ``name`` or raise the OpenWhisk path-segment error."""
    if len(name) > MAX_NAME_LENGTH:
        raise BadRequestError(f"Name segement longer than allowed: {len(name)} > {MAX_NAME_LENGTH}.")
    if not is_valid_name(name):
        raise BadRequestError("The name of the entity contains illegal characters.")
    return name


def validate_namespace(name: str) -> str:
    """Return ``name`` or raise the OpenWhisk namespace error."""
    if len(name) > MAX_NAME_LENGTH:
        raise BadRequestError(f"Namespace longer than allowed: {len(name)} > {MAX_NAME_LENGTH}.")
    if not is_valid_name(name):
        raise BadRequestError("The namespace contains illegal characters.")
    return name


def parse_activation_id(text: str) -> ActivationId:
    """Validate a 32-hex activation id from a URL."""
    if len(text) != 32:
        raise BadRequestError(f"Activation id length is {len(text)} but must be 32.")
    if not _ACTIVATION_ID_RE.match(text):
        raise BadRequestError("The activation id is not valid.")
    return text


@final
@dataclass(frozen=True, slots=True)
class EntityPath:
    """``/namespace[/package]/name``: where an action, package, trigger or rule lives."""

    namespace: str
    name: str
    package: str | None = None

    @property
    def path(self) -> str:
        """The OpenWhisk ``namespace`` field: ``ns`` or ``ns/pkg``."""
        return f"{self.namespace}/{self.package}" if self.package else self.namespace

    @property
    def key(self) -> str:
        """The name within the namespace's shared key space: ``name`` or ``pkg/name``."""
        return f"{self.package}/{self.name}" if self.package else self.name

    @property
    def fqn(self) -> str:
        """``/ns[/pkg]/name`` with the leading slash."""
        return f"/{self.path}/{self.name}"

    @property
    def relative(self) -> str:
        """``ns[/pkg]/name`` without the leading slash (activation ``path`` annotation)."""
        return f"{self.path}/{self.name}"

    def __str__(self) -> str:
        return self.fqn


def parse_fqn(text: str, default_namespace: str) -> EntityPath:
    """Parse ``/ns/name``, ``/ns/pkg/name``, ``ns/pkg/name``, ``pkg/name`` or ``name``.

    ``_`` as the namespace means ``default_namespace``. Raises BadRequestError when malformed.
    """
    explicit_ns = text.startswith("/")
    parts = text.strip("/").split("/")
    if any(not p for p in parts) or len(parts) > 3:
        raise BadRequestError(f"The fully qualified name '{text}' is not valid.")
    if explicit_ns or len(parts) == 3:
        if len(parts) < 2:
            raise BadRequestError(f"The fully qualified name '{text}' is not valid.")
        ns, rest = parts[0], parts[1:]
    else:
        ns, rest = default_namespace, parts
    ns = default_namespace if ns == "_" else ns
    validate_namespace(ns)
    for part in rest:
        validate_entity_name(part)
    if len(rest) == 2:
        return EntityPath(ns, rest[1], rest[0])
    return EntityPath(ns, rest[0])
