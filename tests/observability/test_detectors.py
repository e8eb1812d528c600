"""Each detector on synthetic traffic with injected anomalies: precision and recall have minimums.

The workloads (stockade/testing/anomalies.py) are seeded; two seeds guard against tuning to one.
The minimums are the documented false-positive budgets turned into assertions
(docs/design/monitoring.md, "Detectors"); the measured values are printed with ``-s``.
"""

from __future__ import annotations

import pytest

from stockade.observability.detectors import (
    DurationDetector,
    DurationState,
    ErrorRateDetector,
    ErrorRateState,
    InvocationRateDetector,
    InvocationRateState,
    ShapeDetector,
    ShapeState,
)
from stockade.observability.events import EventType
from stockade.testing.anomalies import evaluate

# detector: (minimum precision, minimum recall)
MINIMUMS = {
    "duration": (0.95, 0.90),
    "result_shape": (0.95, 0.95),
    "output_schema": (0.99, 0.99),
    "error_rate": (0.90, 0.90),
    "invocation_rate": (0.90, 0.85),
    "log_pattern": (0.98, 0.95),
}


@pytest.mark.parametrize("seed", [7, 23])
@pytest.mark.parametrize("name", sorted(MINIMUMS))
def test_detector_meets_its_precision_and_recall_minimums(name, seed):
    score = evaluate(name, seed=seed, actions=12, per_action=1200)
    print(score)
    precision, recall = MINIMUMS[name]
    assert score.true_positives > 5, "the workload must inject enough anomalies to measure"
    assert score.precision >= precision, score
    assert score.recall >= recall, score


def test_duration_is_silent_during_warm_up_and_flags_a_slow_run_after():
    detector, state = DurationDetector(warmup=30), DurationState()
    assert [detector.observe(state, 1000.0 if i == 5 else 20.0) for i in range(30)] == [None] * 30
    found = detector.observe(state, 2000.0)
    assert found is not None
    assert found.type is EventType.ANOMALY_DURATION
    assert found.details["typicalMs"] < 25


def test_duration_ignores_small_absolute_differences_and_does_not_learn_outliers():
    detector, state = DurationDetector(), DurationState()
    for _ in range(100):
        detector.observe(state, 2.0)
    assert detector.observe(state, 30.0) is None  # 15x, but only 28 ms longer
    for _ in range(20):
        detector.observe(state, 5000.0)
    # Twenty slow runs moved the baseline only a little: the next one is still anomalous.
    assert detector.observe(state, 5000.0) is not None


def test_shape_learns_optional_keys_and_null_then_flags_new_keys_and_types():
    detector, state = ShapeDetector(warmup=4), ShapeState()
    for result in ({"a": 1}, {"a": 2, "b": "x"}, {"a": None}, {"a": 3}):
        assert detector.observe(state, result) is None
    assert detector.observe(state, {"a": 4, "b": None}) is None
    new_key = detector.observe(state, {"a": 1, "password": "hunter2"})
    assert new_key is not None
    assert new_key.details["newKeys"] == ["password"]
    assert "hunter2" not in new_key.message
    assert "hunter2" not in str(new_key.details)
    changed = detector.observe(state, {"a": "1"})
    assert changed is not None
    assert changed.details["changedKeys"] == ["a"]
    root = detector.observe(state, [1])
    assert root is not None
    assert root.details["root"] == "array"


def test_error_rate_reports_once_per_spike_and_rearms():
    detector, state = ErrorRateDetector(window=10, warmup=20, min_errors=5), ErrorRateState()
    for _ in range(100):
        assert detector.observe(state, False) is None
    reports = [detector.observe(state, True) for _ in range(15)]
    assert sum(r is not None for r in reports) == 1
    for _ in range(20):
        detector.observe(state, False)
    assert sum(detector.observe(state, True) is not None for _ in range(10)) == 1
    # Only the errors before each spike was recognised were learned, not the spikes themselves.
    assert state.rate < 0.15


def test_invocation_rate_reports_a_burst_once_per_bucket():
    detector, state = InvocationRateDetector(bucket_ms=1000, warmup_buckets=10, min_count=10), InvocationRateState()
    t = 0
    for bucket in range(20):
        for i in range(3):
            assert detector.observe(state, bucket * 1000 + i) is None
    t = 20 * 1000
    hits = [detector.observe(state, t + i) for i in range(100)]
    assert sum(h is not None for h in hits) == 1
    assert hits[-1] is None
    # A long idle gap decays the baseline (bounded work) and the next burst is still seen.
    for i in range(100):
        detector.observe(state, 500_000 + i)
    assert state.buckets < 20 + 1 + detector.max_idle_buckets + 1
