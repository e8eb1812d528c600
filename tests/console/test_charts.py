"""The charts' geometry: buckets of invocations, error rate and mean duration (pure)."""

from stockade.console.charts import BUCKETS, HEIGHT, charts_for
from stockade.domain import Activation, ActivationResponse, ActivationStatus

HOUR = 3_600_000


def activation(start, duration, ok=True):
    status = ActivationStatus.SUCCESS if ok else ActivationStatus.APPLICATION_ERROR
    return Activation(
        activation_id="a" * 32,
        namespace="guest",
        subject="guest",
        name="fn",
        version="0.0.1",
        start=start,
        end=start + duration,
        response=ActivationResponse(status, {} if ok else {"error": "x"}),
    )


def test_buckets_count_fail_and_average_within_the_window():
    now = 100 * HOUR
    runs = [
        activation(now - 30 * 60_000, 100),
        activation(now - 20 * 60_000, 300, ok=False),
        activation(now - 5 * HOUR, 50),
        activation(now - 25 * HOUR, 999),  # outside the window
        activation(now + 1, 999),  # in the future: ignored
    ]
    invocations, errors, duration = charts_for(runs, now, 24 * HOUR)
    assert invocations.summary == "3 invocations in the window"
    assert errors.summary == "1 of 3 failed (33%)"
    assert duration.summary == "mean duration 150 ms"
    assert len(invocations.bars) == BUCKETS
    last = invocations.bars[-1]
    assert last.height == HEIGHT
    assert last.label.endswith("2 invocations")
    assert errors.bars[-1].label.endswith("50% errors")
    assert duration.bars[-1].label.endswith("200 ms mean")
    assert invocations.bars[0].height == 0


def test_no_activations_draw_empty_charts():
    charts = charts_for([], 10 * HOUR, 24 * HOUR)
    assert [c.summary for c in charts] == [
        "0 invocations in the window",
        "0 of 0 failed (0%)",
        "mean duration 0 ms",
    ]
    assert all(b.height == 0 for c in charts for b in c.bars)
