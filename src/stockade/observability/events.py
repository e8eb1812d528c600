"""Security events: one model for everything the platform's controls report.

Every control (authentication, authorization, sealed parameters, input schemas, throttles, the
sandbox integrity check, the deploy gate, the vault, egress, the anomaly detectors) reports
through one ``EventSink`` as a ``SecurityEvent``. The sink the services get is write-behind
(``services/events.py``): ``emit`` is synchronous, O(1) and never waits on I/O.

Invariant: no event carries a secret. Details hold names, ids, reasons and counts, never
parameter values, credentials or log text.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol, final

from stockade.domain import JSON

__all__ = [
    "DENIAL_KINDS",
    "EVENT_TYPES",
    "EventSink",
    "EventType",
    "NullEventSink",
    "SecurityEvent",
    "Severity",
    "egress_denied",
    "new_event_id",
]


class Severity(enum.IntEnum):
    """How urgent an event or alert is; comparable (``HIGH > MEDIUM``)."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        """The lower-case name used in JSON, metrics and rules."""
        return self.name.lower()

    @classmethod
    def parse(cls, raw: object) -> Severity:
        """From a label (``"high"``); ValueError otherwise."""
        if isinstance(raw, str) and raw.upper() in cls.__members__:
            return cls[raw.upper()]
        raise ValueError(f"unknown severity {raw!r} (use {', '.join(s.label for s in cls)})")


class EventType(enum.StrEnum):
    """Every event type, named ``<area>.<what>``; the value is the stored and queried name."""

    AUTH_FAILED = "auth.failed"
    AUTHORIZATION_DENIED = "authorization.denied"
    SEALED_PARAMETER_REFUSED = "request.sealed_parameter"
    SCHEMA_REFUSED = "request.schema_violation"
    RATE_LIMITED = "request.throttled"
    SANDBOX_TAMPER = "sandbox.tamper"
    SANDBOX_STRAY_PROCESS = "sandbox.stray_process"
    INTEGRITY_TAMPER = "integrity.tamper"
    EGRESS_DENIED = "egress.denied"
    DEPLOY_BLOCKED = "deploy.blocked"
    DEPLOY_RISK_ACCEPTED = "deploy.risk_accepted"
    ACTION_VULNERABLE = "action.vulnerable"
    DECRYPT_FAILED = "secret.decrypt_failed"
    ANOMALY_DURATION = "anomaly.duration"
    ANOMALY_RESULT_SHAPE = "anomaly.result_shape"
    ANOMALY_OUTPUT_SCHEMA = "anomaly.output_schema"
    ANOMALY_ERROR_RATE = "anomaly.error_rate"
    ANOMALY_LOG_PATTERN = "anomaly.log_pattern"
    ANOMALY_INVOCATION_RATE = "anomaly.invocation_rate"


EVENT_TYPES: Final = frozenset(t.value for t in EventType)

# Event type → the ``kind`` label of ``stockade_denials_total`` (the refusals of a request).
DENIAL_KINDS: Final[Mapping[str, str]] = {
    EventType.AUTH_FAILED: "auth",
    EventType.AUTHORIZATION_DENIED: "authorization",
    EventType.EGRESS_DENIED: "egress",
    EventType.SEALED_PARAMETER_REFUSED: "sealed_parameters",
    EventType.SCHEMA_REFUSED: "schema",
    EventType.RATE_LIMITED: "rate_limit",
}


def new_event_id() -> str:
    """32 lowercase hex characters from a CSPRNG."""
    return secrets.token_hex(16)


@final
@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One thing a control saw: what, how bad, where, who, and the facts (never secrets).

    ``namespace`` is the namespace the event concerns ("" when none is known, e.g. an unknown
    API key: such events belong to the platform and are read from its default namespace).
    """

    type: EventType
    severity: Severity
    time_ms: int
    namespace: str = ""
    action: str = ""  # the action's path relative to its namespace ("pkg/name"), when one is involved
    activation_id: str = ""
    subject: str = ""  # who caused it: a subject, or an API key uuid when authentication failed
    source: str = ""  # the control that reported it: "api", "auth", "invoke", "vault", "gate", "anomaly", ...
    details: Mapping[str, JSON] = field(default_factory=dict)
    event_id: str = field(default_factory=new_event_id)

    def to_json(self) -> dict[str, JSON]:
        """The API form."""
        return {
            "id": self.event_id,
            "type": self.type.value,
            "severity": self.severity.label,
            "time": self.time_ms,
            "namespace": self.namespace,
            "action": self.action,
            "activationId": self.activation_id,
            "subject": self.subject,
            "source": self.source,
            "details": dict(self.details),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, JSON]) -> SecurityEvent:
        """The inverse of ``to_json`` (stored documents)."""
        details = doc.get("details")
        return cls(
            type=EventType(str(doc["type"])),
            severity=Severity.parse(doc["severity"]),
            time_ms=int(str(doc["time"])),
            namespace=str(doc.get("namespace") or ""),
            action=str(doc.get("action") or ""),
            activation_id=str(doc.get("activationId") or ""),
            subject=str(doc.get("subject") or ""),
            source=str(doc.get("source") or ""),
            details=details if isinstance(details, dict) else {},
            event_id=str(doc["id"]),
        )


class EventSink(Protocol):
    """Where controls report events. ``emit`` must return at once: no I/O, no awaiting."""

    def emit(self, event: SecurityEvent) -> None:
        """Take one event (buffered; written and evaluated behind the caller)."""


@final
class NullEventSink:
    """Drops every event (the default where no sink is wired, e.g. unit tests of one service)."""

    def emit(self, event: SecurityEvent) -> None:
        """Nothing."""


def egress_denied(
    *, namespace: str, action: str, activation_id: str, host: str, port: int, time_ms: int
) -> SecurityEvent:
    """The event the egress allowlist proxy emits for a refused connection (hook for that issue)."""
    return SecurityEvent(
        type=EventType.EGRESS_DENIED,
        severity=Severity.HIGH,
        time_ms=time_ms,
        namespace=namespace,
        action=action,
        activation_id=activation_id,
        source="egress",
        details={"host": host[:255], "port": port},
    )
