"""OpenTelemetry traces of invocations: API → invoke → invoker (→ sandbox init/run), off by default.

The tracer provider is the app's own (``build_tracer``), never OpenTelemetry's global one, so
tests stay isolated and an embedding application keeps its own. With tracing off the services
hold ``None`` and ``traced`` returns one shared no-op context manager: no span objects, no
context switches on the hot path.

Spans: ``stockade.api.invoke`` (route), ``stockade.activation`` (one per activation, sequence
components nested), ``stockade.invoker.run`` with ``stockade.sandbox.start|init|run`` children.
Exporting: spans go to ``exporter`` (tests pass an in-memory one); from settings, spans are
written as JSON to stderr (OTLP export would need opentelemetry-exporter-otlp; not shipped yet).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, Tracer
from opentelemetry.util.types import AttributeValue

__all__ = ["Tracer", "build_tracer", "traced"]

_NO_SPAN: Final[AbstractContextManager[Span | None]] = contextlib.nullcontext(None)


def build_tracer(
    exporter: SpanExporter | None = None, *, service_name: str = "stockade"
) -> tuple[Tracer, TracerProvider]:
    """A tracer on a provider of its own that sends every finished span to ``exporter`` (stderr by default)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(SimpleSpanProcessor(exporter or ConsoleSpanExporter(out=sys.stderr)))
    return provider.get_tracer("stockade"), provider


def traced(
    tracer: Tracer | None, name: str, attributes: Mapping[str, AttributeValue] | None = None
) -> AbstractContextManager[Span | None]:
    """A span as the current one while the block runs, or a shared no-op when tracing is off."""
    if tracer is None:
        return _NO_SPAN
    return tracer.start_as_current_span(name, attributes=attributes)
