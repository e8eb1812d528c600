"""Tracing: off by default with no per-call cost; spans through the real SDK when on."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stockade.observability.tracing import build_tracer, traced


def test_tracing_off_uses_one_shared_no_op():
    assert traced(None, "a") is traced(None, "b")
    with traced(None, "a") as span:
        assert span is None


def test_spans_nest_and_reach_the_exporter():
    exporter = InMemorySpanExporter()
    tracer, provider = build_tracer(exporter)
    with traced(tracer, "outer", {"k": "v"}) as outer, traced(tracer, "inner") as inner:
        assert outer is not None
        assert inner is not None
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["inner"].parent.span_id == spans["outer"].context.span_id
    assert spans["outer"].attributes["k"] == "v"
    assert spans["outer"].resource.attributes["service.name"] == "stockade"
    provider.shutdown()
