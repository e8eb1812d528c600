"""Actions: runtime kinds, exec, limits, and the Action record."""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Literal, final

from stockade.domain.entities import JSON, KeyValues, kv_get, kv_to_json
from stockade.domain.names import EntityPath
from stockade.errors import BadRequestError

__all__ = [
    "DEFAULT_LIMITS",
    "RUNTIMES",
    "Action",
    "Exec",
    "LimitBounds",
    "Limits",
    "Runtime",
    "is_binary_code",
    "resolve_kind",
]

RuntimeFamily = Literal["python", "nodejs"]


@final
@dataclass(frozen=True, slots=True)
class Runtime:
    """A runtime kind this platform runs."""

    kind: str
    family: RuntimeFamily
    is_default: bool
    deprecated: bool = False


# The interpreter that runs the platform is the one that runs Python actions (the zygote forks it).
PYTHON_VERSION_KIND = f"python:{sys.version_info.major}.{sys.version_info.minor}"

# Invariant: exactly one default per family; `<family>:default` resolves to it. Versioned names are
# the ones a user types for the installed runtimes (OpenWhisk's manifest lists e.g. python:3.11).
RUNTIMES: dict[str, Runtime] = {
    "python:3": Runtime("python:3", "python", is_default=True),
    PYTHON_VERSION_KIND: Runtime(PYTHON_VERSION_KIND, "python", is_default=False),
    "nodejs:20": Runtime("nodejs:20", "nodejs", is_default=True),
}
SEQUENCE_KIND = "sequence"
_BASE64_RE = re.compile(r"\A([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)\Z")


def resolve_kind(kind: Any) -> str:
    """Map a requested kind to a supported one (``nodejs:default`` → ``nodejs:20``)."""
    if not isinstance(kind, str):
        raise BadRequestError("The request content was malformed:\n'kind' must be a string defined in 'exec'")
    if kind == SEQUENCE_KIND or kind in RUNTIMES:
        return kind
    if kind.endswith(":default"):
        family = kind.split(":", 1)[0]
        for runtime in RUNTIMES.values():
            if runtime.family == family and runtime.is_default:
                return runtime.kind
    valid = ", ".join(f"'{k}'" for k in [*RUNTIMES, "python:default", "nodejs:default", SEQUENCE_KIND])
    raise BadRequestError(
        "The request content was malformed:\n"
        f"The specified runtime '{kind}' is not supported by this platform. Valid values are: {valid}"
    )


def is_binary_code(code: str) -> bool:
    """OpenWhisk's rule: trimmed code is non-empty, a multiple of 4 long and base64-shaped."""
    trimmed = code.strip()
    return bool(trimmed) and len(trimmed) % 4 == 0 and bool(_BASE64_RE.match(trimmed))


@final
@dataclass(frozen=True, slots=True)
class Exec:
    """What an action runs: code of a runtime kind, or a sequence of other actions."""

    kind: str
    code: str = ""
    main: str | None = None
    components: tuple[str, ...] = ()

    @property
    def is_sequence(self) -> bool:
        """True for ``kind: sequence``."""
        return self.kind == SEQUENCE_KIND

    @property
    def binary(self) -> bool:
        """Computed from the code's shape, never taken from the request."""
        return not self.is_sequence and is_binary_code(self.code)

    @property
    def family(self) -> RuntimeFamily | None:
        """The runtime family, None for sequences."""
        runtime = RUNTIMES.get(self.kind)
        return runtime.family if runtime else None

    @property
    def code_digest(self) -> str:
        """SHA-256 of the code, identifying its content."""
        return hashlib.sha256(self.code.encode()).hexdigest()

    def to_json(self, *, include_code: bool = True) -> dict[str, JSON]:
        """The OpenWhisk ``exec`` object."""
        if self.is_sequence:
            return {"kind": self.kind, "components": list(self.components)}
        out: dict[str, JSON] = {"kind": self.kind}
        if include_code:
            out["code"] = self.code
        out["binary"] = self.binary
        if self.main is not None:
            out["main"] = self.main
        return out


@final
@dataclass(frozen=True, slots=True)
class LimitBounds:
    """The allowed ranges for action limits (from settings)."""

    min_timeout_ms: int = 100
    max_timeout_ms: int = 300_000
    min_memory_mb: int = 128
    max_memory_mb: int = 512
    max_logs_mb: int = 10
    max_concurrency: int = 1


@final
@dataclass(frozen=True, slots=True)
class Limits:
    """Per-action limits; the field names are OpenWhisk's (timeout in ms, memory and logs in MB)."""

    timeout: int = 60_000
    memory: int = 256
    logs: int = 10
    concurrency: int = 1

    def validate(self, bounds: LimitBounds) -> Limits:
        """Return self, or raise the OpenWhisk 400 for the first limit out of range."""
        if self.timeout > bounds.max_timeout_ms:
            raise BadRequestError(
                f"duration {self.timeout} milliseconds exceeds allowed threshold of {bounds.max_timeout_ms} milliseconds"
            )
        if self.timeout < bounds.min_timeout_ms:
            raise BadRequestError(
                f"duration {self.timeout} milliseconds below allowed threshold of {bounds.min_timeout_ms} milliseconds"
            )
        if self.memory > bounds.max_memory_mb:
            raise BadRequestError(
                f"memory size {self.memory} MB exceeds allowed threshold of {bounds.max_memory_mb} MB"
            )
        if self.memory < bounds.min_memory_mb:
            raise BadRequestError(f"memory size {self.memory} MB below allowed threshold of {bounds.min_memory_mb} MB")
        if self.logs > bounds.max_logs_mb:
            raise BadRequestError(f"log size {self.logs} MB exceeds allowed threshold of {bounds.max_logs_mb} MB")
        if self.logs < 0:
            raise BadRequestError(f"log size {self.logs} MB below allowed threshold of 0 MB")
        if self.concurrency > bounds.max_concurrency:
            raise BadRequestError(
                f"concurrency {self.concurrency} exceeds allowed threshold of {bounds.max_concurrency}"
            )
        if self.concurrency < 1:
            raise BadRequestError(f"concurrency {self.concurrency} below allowed threshold of 1")
        return self

    def to_json(self) -> dict[str, int]:
        """The OpenWhisk ``limits`` object."""
        return {
            "timeout": self.timeout,
            "memory": self.memory,
            "logs": self.logs,
            "concurrency": self.concurrency,
        }


DEFAULT_LIMITS = Limits()


@final
@dataclass(frozen=True, slots=True)
class Action:
    """An action as stored: one version of code, parameters, limits and annotations."""

    path: EntityPath
    exec: Exec
    version: str = "0.0.1"
    publish: bool = False
    parameters: KeyValues = ()
    annotations: KeyValues = ()
    limits: Limits = field(default_factory=Limits)
    updated: int = 0

    def annotation(self, key: str, default: JSON = None) -> JSON:
        """The value of annotation ``key``."""
        return kv_get(self.annotations, key, default)

    def to_json(self, *, include_code: bool = True) -> dict[str, JSON]:
        """The full OpenWhisk action document."""
        return {
            "namespace": self.path.path,
            "name": self.path.name,
            "version": self.version,
            "publish": self.publish,
            "exec": self.exec.to_json(include_code=include_code),
            "parameters": kv_to_json(self.parameters),
            "limits": self.limits.to_json(),
            "annotations": kv_to_json(self.annotations),
            "updated": self.updated,
        }

    def to_summary(self) -> dict[str, JSON]:
        """The list form: no code, no parameters, ``exec`` has only ``binary``."""
        return {
            "namespace": self.path.path,
            "name": self.path.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": kv_to_json(self.annotations),
            "limits": self.limits.to_json(),
            "exec": {"binary": self.exec.binary},
            "updated": self.updated,
        }
