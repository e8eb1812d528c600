"""Per-action online detectors: each keeps O(1) state per action and does O(1) work per activation.

Every detector has a warm-up (it says nothing until it has seen enough of the action) and a
documented false-positive budget, measured by ``tests/observability/test_detectors.py`` and
``benchmarks/bench_detect.py`` on synthetic traffic with injected anomalies
(docs/design/monitoring.md, "Detectors"):

- ``DurationDetector``: run time far above the action's normal range. Baseline: EWMA of
  log(run ms) and EW mean absolute deviation; an outlier must be ``z_threshold`` robust
  deviations above, ``min_ratio``× the typical time and ``min_excess_ms`` longer. Outliers do not
  move the baseline (they are clipped), so a slow attack cannot teach itself in quickly.
- ``ShapeDetector``: a successful result with a key never seen during warm-up, a known key with a
  new JSON type, or a different top-level type. ``null`` matches any type (optional fields).
- ``ErrorRateDetector``: errors among the last ``window`` activations far above the long-run
  rate (binomial z-score with a floor); one report per spike episode (hysteresis).
- ``InvocationRateDetector``: activations in the current time bucket far above the EWMA of past
  buckets (Poisson floor on the deviation); one report per bucket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Final, final

from stockade.domain import JSON
from stockade.observability.events import EventType, Severity

__all__ = [
    "Anomaly",
    "DurationDetector",
    "DurationState",
    "ErrorRateDetector",
    "ErrorRateState",
    "InvocationRateDetector",
    "InvocationRateState",
    "ShapeDetector",
    "ShapeState",
    "json_type",
]

# Robust scale of a normal distribution from its mean absolute deviation (sqrt(pi/2)).
_MAD_TO_SIGMA: Final = 1.2533


@final
@dataclass(frozen=True, slots=True)
class Anomaly:
    """What a detector found in one activation (or one time bucket)."""

    type: EventType
    severity: Severity
    message: str
    details: Mapping[str, JSON]


# -- duration ---------------------------------------------------------------------------------


@dataclass(slots=True)
class DurationState:
    """EWMA of log run time and its mean absolute deviation."""

    n: int = 0
    mean: float = 0.0
    dev: float = 0.0


@final
@dataclass(frozen=True, slots=True)
class DurationDetector:
    """Run time far above normal. FP budget: ≤ 1 per 1,000 normal activations after warm-up."""

    warmup: int = 30
    alpha: float = 0.03
    z_threshold: float = 5.0
    min_ratio: float = 3.0
    min_excess_ms: float = 50.0
    # Floor of the deviation in log space: ±15% jitter is never anomalous.
    min_sigma: float = 0.15

    def observe(self, state: DurationState, run_ms: float) -> Anomaly | None:
        """Score ``run_ms`` against the baseline, then learn it (clipped)."""
        x = math.log1p(max(run_ms, 0.0))
        if state.n == 0:
            state.n, state.mean = 1, x
            return None
        sigma = max(state.dev * _MAD_TO_SIGMA, self.min_sigma)
        z = (x - state.mean) / sigma
        found: Anomaly | None = None
        if state.n >= self.warmup and z >= self.z_threshold:
            typical_ms = math.expm1(state.mean)
            if run_ms >= typical_ms * self.min_ratio and run_ms - typical_ms >= self.min_excess_ms:
                found = Anomaly(
                    EventType.ANOMALY_DURATION,
                    Severity.MEDIUM,
                    f"run time {run_ms:.0f} ms is {run_ms / max(typical_ms, 1e-3):.1f}x the typical {typical_ms:.0f} ms",
                    {"runMs": round(run_ms, 1), "typicalMs": round(typical_ms, 1), "score": round(z, 2)},
                )
        # Invariant: an outlier moves the baseline at most as far as a 3-sigma observation would.
        clipped = min(x, state.mean + 3 * sigma)
        alpha = max(self.alpha, 1.0 / (state.n + 1))
        delta = clipped - state.mean
        state.mean += alpha * delta
        state.dev += alpha * (abs(delta) - state.dev)
        state.n += 1
        return found


# -- result shape -----------------------------------------------------------------------------

_TYPES: Final[Mapping[type, str]] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
}
_MAX_KEYS: Final = 64
_MAX_KNOWN: Final = 256


def json_type(value: JSON) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    return _TYPES.get(type(value), "unknown")


@dataclass(slots=True)
class ShapeState:
    """Key → JSON types seen during warm-up, and the top-level types seen."""

    n: int = 0
    roots: set[str] | None = None
    keys: dict[str, set[str]] | None = None


@final
@dataclass(frozen=True, slots=True)
class ShapeDetector:
    """Result shape changes. FP budget: 0 on actions whose keys all appear during warm-up."""

    warmup: int = 30

    def observe(self, state: ShapeState, result: JSON) -> Anomaly | None:
        """Learn during warm-up; afterwards report novel keys, changed types or a new root type."""
        if state.roots is None or state.keys is None:
            state.roots, state.keys = set(), {}
        root = json_type(result)
        items = islice(result.items(), _MAX_KEYS) if isinstance(result, dict) else ()
        if state.n < self.warmup:
            state.n += 1
            state.roots.add(root)
            for key, value in items:
                if len(state.keys) >= _MAX_KNOWN and key not in state.keys:
                    break
                kind = json_type(value)
                if kind != "null":
                    state.keys.setdefault(key, set()).add(kind)
                else:
                    state.keys.setdefault(key, set())
            return None
        if root not in state.roots:
            return Anomaly(
                EventType.ANOMALY_RESULT_SHAPE,
                Severity.MEDIUM,
                f"result is a JSON {root}; this action returned {', '.join(sorted(state.roots))}",
                {"root": root, "expected": sorted(state.roots)},
            )
        novel: list[str] = []
        changed: list[str] = []
        keys = state.keys
        for key, value in items:
            known = keys.get(key)
            if known is None:
                novel.append(key[:64])
            elif value is not None and known and _TYPES.get(type(value), "unknown") not in known:
                changed.append(key[:64])
        if not novel and not changed:
            return None
        # Invariant: key names only, never values (results may hold secrets).
        return Anomaly(
            EventType.ANOMALY_RESULT_SHAPE,
            Severity.MEDIUM,
            "result has "
            + "; ".join(
                part
                for part in (
                    f"new keys {', '.join(novel[:10])}" if novel else "",
                    f"keys of a new type {', '.join(changed[:10])}" if changed else "",
                )
                if part
            ),
            {"newKeys": novel[:10], "changedKeys": changed[:10]},
        )


# -- error rate -------------------------------------------------------------------------------


@dataclass(slots=True)
class ErrorRateState:
    """A ring of the last outcomes, their error count, and the long-run error rate."""

    ring: bytearray | None = None
    index: int = 0
    errors: int = 0
    n: int = 0
    rate: float = 0.0
    in_spike: bool = False


@final
@dataclass(frozen=True, slots=True)
class ErrorRateDetector:
    """Error-rate spikes. FP budget: ≤ 1 spike per 5,000 activations at a steady ≤ 10% error rate."""

    window: int = 20
    warmup: int = 50
    alpha: float = 0.01
    z_threshold: float = 4.0
    min_errors: int = 6
    min_increase: float = 0.25

    def observe(self, state: ErrorRateState, is_error: bool) -> Anomaly | None:
        """Slide the window; report when its error count turns into a spike."""
        if state.ring is None:
            state.ring = bytearray(self.window)
        bit = 1 if is_error else 0
        state.errors += bit - state.ring[state.index]
        state.ring[state.index] = bit
        state.index = (state.index + 1) % self.window
        state.n += 1
        p = state.rate
        expected = self.window * p
        found: Anomaly | None = None
        # The z-score is computed only when the window holds enough errors to matter.
        if state.n >= self.warmup and (state.errors >= self.min_errors or state.in_spike):
            sd = math.sqrt(self.window * p * (1 - p) + 0.25)
            z = (state.errors - expected) / sd
            share = state.errors / self.window
            is_spike = state.errors >= self.min_errors and z >= self.z_threshold and share >= p + self.min_increase
            if is_spike and not state.in_spike:
                state.in_spike = True
                found = Anomaly(
                    EventType.ANOMALY_ERROR_RATE,
                    Severity.MEDIUM,
                    f"{state.errors} of the last {self.window} activations failed; the usual rate is {p:.1%}",
                    {"errors": state.errors, "window": self.window, "baselineRate": round(p, 4), "score": round(z, 2)},
                )
            elif state.in_spike and share <= p + self.min_increase / 2:
                state.in_spike = False
        if not state.in_spike:
            # Invariant: a spike does not raise the baseline it is measured against.
            state.rate += max(self.alpha, 1.0 / state.n) * (bit - state.rate)
        return found


# -- invocation rate --------------------------------------------------------------------------


@dataclass(slots=True)
class InvocationRateState:
    """The current bucket's count and the EWMA (mean, deviation) of past buckets."""

    bucket: int = -1
    count: int = 0
    buckets: int = 0
    mean: float = 0.0
    dev: float = 0.0
    reported: bool = False


@final
@dataclass(frozen=True, slots=True)
class InvocationRateDetector:
    """Invocation-rate spikes. FP budget: ≤ 1 per 2,000 buckets of steady Poisson traffic."""

    bucket_ms: int = 10_000
    warmup_buckets: int = 30
    alpha: float = 0.05
    z_threshold: float = 6.0
    min_ratio: float = 3.0
    min_count: int = 20
    # After a long idle gap, at most this many empty buckets are folded into the baseline.
    max_idle_buckets: int = 60

    def _close(self, state: InvocationRateState, count: int) -> None:
        alpha = max(self.alpha, 1.0 / (state.buckets + 1))
        delta = count - state.mean
        state.mean += alpha * delta
        state.dev += alpha * (abs(delta) - state.dev)
        state.buckets += 1

    def observe(self, state: InvocationRateState, time_ms: int) -> Anomaly | None:
        """Count one activation at ``time_ms``; report once when its bucket becomes a spike."""
        bucket = time_ms // self.bucket_ms
        if bucket != state.bucket:
            if state.bucket >= 0 and bucket > state.bucket:
                if not state.reported:
                    # Invariant: a spike bucket is not learned as normal traffic.
                    self._close(state, state.count)
                for _ in range(min(bucket - state.bucket - 1, self.max_idle_buckets)):
                    self._close(state, 0)
            if bucket > state.bucket:
                state.bucket, state.count, state.reported = bucket, 0, False
        state.count += 1
        if state.buckets < self.warmup_buckets or state.reported:
            return None
        sigma = max(state.dev * _MAD_TO_SIGMA, math.sqrt(max(state.mean, 1.0)))
        threshold = max(state.mean + self.z_threshold * sigma, state.mean * self.min_ratio, float(self.min_count))
        if state.count <= threshold:
            return None
        state.reported = True
        return Anomaly(
            EventType.ANOMALY_INVOCATION_RATE,
            Severity.MEDIUM,
            f"{state.count} activations in {self.bucket_ms // 1000} s; the usual is {state.mean:.1f}",
            {"count": state.count, "bucketMs": self.bucket_ms, "baseline": round(state.mean, 2)},
        )
