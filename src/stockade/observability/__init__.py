"""Logs, metrics, security events, anomaly detection, alert rules and traces: what the platform
tells operators. Importable from every layer but runtimes; imports nothing above ``domain``.

Only the light modules are re-exported here. ``metrics`` (prometheus_client), ``tracing``
(OpenTelemetry SDK), ``anomaly`` (jsonschema) and ``alerts`` are imported by their module path,
so that importing an event type (e.g. from ``store``) does not load those libraries.
"""

from stockade.observability.events import EventSink, EventType, NullEventSink, SecurityEvent, Severity, egress_denied
from stockade.observability.logging import configure_logging
from stockade.observability.tags import TAGS_ANNOTATION, parse_tags, tags_of

__all__ = [
    "TAGS_ANNOTATION",
    "EventSink",
    "EventType",
    "NullEventSink",
    "SecurityEvent",
    "Severity",
    "configure_logging",
    "egress_denied",
    "parse_tags",
    "tags_of",
]
