"""Anomaly detection per action: baselines learnt online, one ``observe`` per recorded activation.

``AnomalyMonitor.observe`` takes an ``Observation`` (what the activation record says) and
returns the security events of whatever its detectors found (``detectors.py``,
``log_patterns.py``, and the declared ``output-schema`` annotation checked here). It is called
behind the response, after the activation is recorded (``services/monitoring.py``), and its cost
per activation is bounded: O(1) state updates, at most 64 result keys, at most 500 log lines.

Baselines are per (namespace, action) and start again when the action's version changes (new
code may legitimately behave differently). At most ``max_actions`` baselines are kept (least
recently used are forgotten, and warm up again when they come back).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from stockade.domain import JSON
from stockade.errors import BadRequestError
from stockade.observability.detectors import (
    Anomaly,
    DurationDetector,
    DurationState,
    ErrorRateDetector,
    ErrorRateState,
    InvocationRateDetector,
    InvocationRateState,
    ShapeDetector,
    ShapeState,
)
from stockade.observability.events import EventType, SecurityEvent, Severity
from stockade.observability.log_patterns import LogPatterns, load_log_patterns

__all__ = ["OUTPUT_SCHEMA_ANNOTATION", "AnomalyMonitor", "Detectors", "Observation", "check_output_schema"]

OUTPUT_SCHEMA_ANNOTATION: Final = "output-schema"
_MAX_VALIDATORS: Final = 4096


def check_output_schema(schema: JSON) -> None:
    """Refuse an ``output-schema`` annotation that is not a valid JSON Schema (400, at deploy)."""
    if not isinstance(schema, dict | bool):
        raise BadRequestError(f"The annotation '{OUTPUT_SCHEMA_ANNOTATION}' must be a JSON Schema object.")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise BadRequestError(
            f"The annotation '{OUTPUT_SCHEMA_ANNOTATION}' is not a valid JSON Schema: {exc.message}"
        ) from None


@final
@dataclass(slots=True)
class Observation:
    """The facts of one recorded activation that the detectors read.

    Not frozen on purpose: one is built per activation on the detection path, and a frozen
    dataclass pays an ``object.__setattr__`` per field. Detectors never modify it.
    """

    namespace: str
    action: str  # path relative to the namespace ("pkg/name")
    version: str
    activation_id: str
    time_ms: int  # when it started
    run_ms: int  # duration without init time
    is_error: bool
    is_cold: bool
    result: JSON
    logs: Sequence[str] = ()
    output_schema: JSON = None
    tags: tuple[str, ...] = ()


@final
@dataclass(frozen=True, slots=True)
class Detectors:
    """Which detectors run, with their parameters (defaults documented in monitoring.md)."""

    duration: DurationDetector | None = field(default_factory=DurationDetector)
    shape: ShapeDetector | None = field(default_factory=ShapeDetector)
    error_rate: ErrorRateDetector | None = field(default_factory=ErrorRateDetector)
    invocation_rate: InvocationRateDetector | None = field(default_factory=InvocationRateDetector)
    check_output_schema: bool = True


@dataclass(slots=True)
class _Baseline:
    version: str
    duration: DurationState = field(default_factory=DurationState)
    shape: ShapeState = field(default_factory=ShapeState)
    errors: ErrorRateState = field(default_factory=ErrorRateState)
    rate: InvocationRateState = field(default_factory=InvocationRateState)


def _pointer(path: Sequence[object]) -> str:
    return "/" + "/".join(str(p) for p in path) if path else "/"


class AnomalyMonitor:
    """Per-action baselines and the detectors that read them."""

    def __init__(
        self,
        detectors: Detectors | None = None,
        log_patterns: LogPatterns | None = None,
        *,
        max_actions: int = 10_000,
    ) -> None:
        self.detectors = detectors or Detectors()
        self.log_patterns = log_patterns if log_patterns is not None else load_log_patterns()
        self._max_actions = max_actions
        self._baselines: OrderedDict[tuple[str, str], _Baseline] = OrderedDict()
        self._validators: dict[tuple[str, str, str], Draft202012Validator | None] = {}

    def _baseline(self, obs: Observation) -> _Baseline:
        key = (obs.namespace, obs.action)
        baseline = self._baselines.get(key)
        if baseline is None or baseline.version != obs.version:
            # A new version keeps the invocation rate (traffic does not change with code).
            rate = baseline.rate if baseline is not None else InvocationRateState()
            baseline = _Baseline(obs.version, rate=rate)
            self._baselines[key] = baseline
            if len(self._baselines) > self._max_actions:
                self._baselines.popitem(last=False)
        else:
            self._baselines.move_to_end(key)
        return baseline

    def _validator(self, obs: Observation) -> Draft202012Validator | None:
        key = (obs.namespace, obs.action, obs.version)
        if key not in self._validators:
            if len(self._validators) >= _MAX_VALIDATORS:
                self._validators.clear()
            schema = obs.output_schema
            self._validators[key] = Draft202012Validator(schema) if isinstance(schema, dict | bool) else None
        return self._validators[key]

    def _schema_anomaly(self, obs: Observation) -> Anomaly | None:
        validator = self._validator(obs)
        if validator is None:
            return None
        error = next(iter(validator.iter_errors(obs.result)), None)
        if error is None:
            return None
        # Invariant: the keyword and path only; jsonschema's message quotes the (possibly secret) value.
        where = _pointer(list(error.absolute_path))
        return Anomaly(
            EventType.ANOMALY_OUTPUT_SCHEMA,
            Severity.HIGH,
            f"result violates the declared output schema at {where} ({error.validator})",
            {"path": where, "keyword": str(error.validator)},
        )

    def observe(self, obs: Observation) -> list[Anomaly]:
        """Run every detector on one activation; the anomalies found (usually none)."""
        found: list[Anomaly] = []
        baseline = self._baseline(obs)
        d = self.detectors
        if d.invocation_rate is not None:
            hit = d.invocation_rate.observe(baseline.rate, obs.time_ms)
            if hit is not None:
                found.append(hit)
        if d.error_rate is not None:
            hit = d.error_rate.observe(baseline.errors, obs.is_error)
            if hit is not None:
                found.append(hit)
        if d.duration is not None and not obs.is_cold and not obs.is_error:
            hit = d.duration.observe(baseline.duration, float(obs.run_ms))
            if hit is not None:
                found.append(hit)
        if not obs.is_error:
            if d.check_output_schema and obs.output_schema is not None:
                hit = self._schema_anomaly(obs)
                if hit is not None:
                    found.append(hit)
            if d.shape is not None:
                hit = d.shape.observe(baseline.shape, obs.result)
                if hit is not None:
                    found.append(hit)
        if obs.logs:
            hit = self.log_patterns.scan(obs.logs)
            if hit is not None:
                found.append(hit)
        return found

    def events(self, obs: Observation) -> list[SecurityEvent]:
        """``observe``, as security events of the activation."""
        return [
            SecurityEvent(
                type=a.type,
                severity=a.severity,
                time_ms=obs.time_ms,
                namespace=obs.namespace,
                action=obs.action,
                activation_id=obs.activation_id,
                source="anomaly",
                details={"message": a.message, **a.details, **({"tags": list(obs.tags)} if obs.tags else {})},
            )
            for a in self.observe(obs)
        ]

    def statistics(self) -> dict[str, int]:
        """How many baselines and compiled output schemas are held."""
        return {"actions": len(self._baselines), "output_schemas": len(self._validators)}
