"""Activations: the record of one run of an action, trigger or sequence."""

from __future__ import annotations

import enum
import json
import secrets
from dataclasses import dataclass, field
from typing import final

from stockade.domain.entities import JSON, KeyValues, kv_to_json

__all__ = ["Activation", "ActivationResponse", "ActivationStatus", "new_activation_id"]


class ActivationStatus(enum.Enum):
    """OpenWhisk's four outcomes; the value is the status string, ``code`` the 0-3 number."""

    SUCCESS = "success"
    APPLICATION_ERROR = "application error"
    DEVELOPER_ERROR = "action developer error"
    INTERNAL_ERROR = "whisk internal error"

    @property
    def code(self) -> int:
        """0 success, 1 application error, 2 developer error, 3 internal error."""
        return _CODES[self]

    @classmethod
    def from_code(cls, code: int) -> ActivationStatus:
        """The status for a 0-3 code."""
        return _BY_CODE[code]


_CODES = {
    ActivationStatus.SUCCESS: 0,
    ActivationStatus.APPLICATION_ERROR: 1,
    ActivationStatus.DEVELOPER_ERROR: 2,
    ActivationStatus.INTERNAL_ERROR: 3,
}
_BY_CODE = {v: k for k, v in _CODES.items()}


def new_activation_id() -> str:
    """32 lowercase hex characters from a CSPRNG."""
    return secrets.token_hex(16)


@final
@dataclass(frozen=True, slots=True)
class ActivationResponse:
    """The outcome of an activation; a failed result is always ``{"error": ...}``."""

    status: ActivationStatus
    result: JSON = None

    @property
    def success(self) -> bool:
        """True iff the status is success."""
        return self.status is ActivationStatus.SUCCESS

    @classmethod
    def failure(cls, status: ActivationStatus, error: JSON) -> ActivationResponse:
        """A failed response with ``{"error": error}`` as its result."""
        return cls(status, {"error": error})

    def to_json(self) -> dict[str, JSON]:
        """``{status, success, result, size}``."""
        out: dict[str, JSON] = {"status": self.status.value, "success": self.success}
        if self.result is not None:
            out["result"] = self.result
            out["size"] = len(json.dumps(self.result, separators=(",", ":")).encode())
        return out


@final
@dataclass(frozen=True, slots=True)
class Activation:
    """One activation record as stored and returned."""

    activation_id: str
    namespace: str  # the invoking identity's namespace
    subject: str
    name: str  # action (or trigger) name, without package
    version: str
    start: int  # epoch ms
    end: int  # epoch ms; 0 for trigger activations
    response: ActivationResponse
    logs: tuple[str, ...] = ()
    annotations: KeyValues = ()
    cause: str | None = None
    # Where the entity lives ("ns/pkg/name"), for filtering by name; not part of the JSON.
    entity_path: str = ""
    publish: bool = False
    extra: dict[str, JSON] = field(default_factory=dict)

    @property
    def duration(self) -> int:
        """end - start, in ms; the extra ``duration`` wins for sequences (sum of components)."""
        explicit = self.extra.get("duration")
        if isinstance(explicit, int):
            return explicit
        return max(0, self.end - self.start)

    def to_json(self) -> dict[str, JSON]:
        """The full record."""
        doc: dict[str, JSON] = {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "subject": self.subject,
            "activationId": self.activation_id,
            "start": self.start,
        }
        if self.end:
            doc["end"] = self.end
            doc["duration"] = self.duration
        if self.cause:
            doc["cause"] = self.cause
        doc["response"] = self.response.to_json()
        doc["logs"] = list(self.logs)
        doc["annotations"] = kv_to_json(self.annotations)
        return doc

    def to_summary(self) -> dict[str, JSON]:
        """The list form with top-level ``statusCode``."""
        doc: dict[str, JSON] = {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": kv_to_json(self.annotations),
            "activationId": self.activation_id,
            "start": self.start,
        }
        if self.end:
            doc["end"] = self.end
            doc["duration"] = self.duration
        if self.cause:
            doc["cause"] = self.cause
        doc["statusCode"] = self.response.status.code
        return doc
