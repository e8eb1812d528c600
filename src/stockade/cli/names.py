"""Entity names as users type them, and the REST paths they map to.

Accepted forms follow the OpenWhisk JS client: ``name``, ``pkg/name``, ``/ns/name``,
``/ns/pkg/name`` and ``ns/pkg/name`` for actions; ``name`` and ``/ns/name`` for packages,
triggers and rules. The namespace defaults to the configured one, itself defaulting to ``_``
(the caller's namespace, resolved by the server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, final
from urllib.parse import quote

from stockade.cli.client import CliError

__all__ = [
    "Collection",
    "QualifiedName",
    "collection_path",
    "parse_action_name",
    "parse_entity_name",
    "parse_namespace",
    "parse_package_ref",
    "segment",
]

Collection = Literal["actions", "packages", "triggers", "rules", "activations"]

_ACTION_FORMS = "NAME, PACKAGE/NAME, /NAMESPACE/NAME or /NAMESPACE/PACKAGE/NAME"
_ENTITY_FORMS = "NAME or /NAMESPACE/NAME"


def segment(text: str) -> str:
    """Percent-encode one path segment; ``/``, spaces and ``&`` included."""
    return quote(text, safe="")


def collection_path(namespace: str, collection: Collection) -> str:
    """``namespaces/{ns}/{collection}``, relative to the API root."""
    return f"namespaces/{segment(namespace)}/{collection}"


@final
@dataclass(frozen=True, slots=True)
class QualifiedName:
    """``/namespace[/package]/name`` as given on the command line."""

    namespace: str
    name: str
    package: str | None = None

    @property
    def key(self) -> str:
        """``name`` or ``pkg/name``: the name within the namespace."""
        return f"{self.package}/{self.name}" if self.package else self.name

    @property
    def fqn(self) -> str:
        """``/ns[/pkg]/name`` with the leading slash, as the API expects in bodies."""
        return f"/{self.namespace}/{self.key}"

    def path(self, collection: Collection) -> str:
        """The entity's REST path relative to the API root, each segment encoded."""
        base = collection_path(self.namespace, collection)
        if self.package:
            return f"{base}/{segment(self.package)}/{segment(self.name)}"
        return f"{base}/{segment(self.name)}"


def _split(text: str, forms: str, noun: str) -> tuple[bool, list[str]]:
    """Split a name into segments, rejecting empty ones."""
    explicit = text.startswith("/")
    parts = (text[1:] if explicit else text).split("/")
    if not text or any(not part for part in parts):
        raise CliError(f"'{text}' is not a valid {noun} name: use {forms}", exit_code=2)
    return explicit, parts


def parse_action_name(text: str, default_namespace: str) -> QualifiedName:
    """Parse an action name in any of the forms the JS client accepts."""
    explicit, parts = _split(text, _ACTION_FORMS, "action")
    if explicit and len(parts) == 2:
        return QualifiedName(parts[0], parts[1])
    if len(parts) == 3:
        return QualifiedName(parts[0], parts[2], parts[1])
    if not explicit and len(parts) == 2:
        return QualifiedName(default_namespace, parts[1], parts[0])
    if not explicit and len(parts) == 1:
        return QualifiedName(default_namespace, parts[0])
    raise CliError(f"'{text}' is not a valid action name: use {_ACTION_FORMS}", exit_code=2)


def parse_entity_name(text: str, default_namespace: str, noun: str) -> QualifiedName:
    """Parse a package, trigger or rule name: ``name`` or ``/ns/name`` (never inside a package)."""
    explicit, parts = _split(text, _ENTITY_FORMS, noun)
    if explicit and len(parts) == 2:
        return QualifiedName(parts[0], parts[1])
    if not explicit and len(parts) == 1:
        return QualifiedName(default_namespace, parts[0])
    raise CliError(f"'{text}' is not a valid {noun} name: use {_ENTITY_FORMS}", exit_code=2)


def parse_package_ref(text: str, default_namespace: str) -> tuple[str, str | None]:
    """Parse the optional argument of ``action list``: ``pkg``, ``/ns`` or ``/ns/pkg``.

    Returns ``(namespace, package or None)``.
    """
    explicit, parts = _split(text, "PACKAGE, /NAMESPACE or /NAMESPACE/PACKAGE", "package")
    if explicit and len(parts) == 1:
        return parts[0], None
    if explicit and len(parts) == 2:
        return parts[0], parts[1]
    if not explicit and len(parts) == 1:
        return default_namespace, parts[0]
    raise CliError(
        f"'{text}' is not a valid package name: use PACKAGE, /NAMESPACE or /NAMESPACE/PACKAGE",
        exit_code=2,
    )


def parse_namespace(text: str) -> str:
    """Parse a namespace argument: ``ns`` or ``/ns``."""
    name = text[1:] if text.startswith("/") else text
    if not name or "/" in name:
        raise CliError(f"'{text}' is not a valid namespace: use NAMESPACE or /NAMESPACE", exit_code=2)
    return name
