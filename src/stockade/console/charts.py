"""Per-action charts as plain geometry, drawn by the templates as inline SVG (no chart library,
no script). Pure: activations in, bars and labels out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, final

from stockade.domain import Activation

__all__ = ["Bar", "Chart", "charts_for"]

WIDTH: Final = 600
HEIGHT: Final = 120
BUCKETS: Final = 24


@final
@dataclass(frozen=True, slots=True)
class Bar:
    """One bucket's bar (SVG coordinates) and what it stands for."""

    x: float
    y: float
    width: float
    height: float
    label: str  # the accessible text of the bar (also its <title>)


@final
@dataclass(frozen=True, slots=True)
class Chart:
    """A bar chart: title, unit, the largest value, bars."""

    title: str
    unit: str
    maximum: float
    bars: tuple[Bar, ...]
    summary: str  # a one-line text equivalent for screen readers


def _bars(values: Sequence[float], labels: Sequence[str]) -> tuple[float, tuple[Bar, ...]]:
    top = max(values, default=0.0) or 1.0
    step = WIDTH / max(1, len(values))
    bars = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        height = round(HEIGHT * value / top, 2)
        bars.append(Bar(round(i * step + 1, 2), round(HEIGHT - height, 2), round(step - 2, 2), height, label))
    return top, tuple(bars)


def charts_for(activations: Sequence[Activation], now_ms: int, window_ms: int) -> tuple[Chart, ...]:
    """Invocations, error rate and mean duration over ``window_ms`` before ``now_ms``, in buckets."""
    size = max(1, window_ms // BUCKETS)
    start = now_ms - size * BUCKETS
    counts = [0] * BUCKETS
    errors = [0] * BUCKETS
    durations = [0] * BUCKETS
    for activation in activations:
        index = (activation.start - start) // size
        if not 0 <= index < BUCKETS:
            continue
        counts[index] += 1
        durations[index] += activation.duration
        if not activation.response.success:
            errors[index] += 1
    minutes = size / 60_000
    span = f"{minutes:.0f} min" if minutes >= 1 else f"{size / 1000:.0f} s"
    labels = [f"bucket {i + 1} of {BUCKETS} ({span} each)" for i in range(BUCKETS)]
    rates = [100.0 * e / c if c else 0.0 for e, c in zip(errors, counts, strict=True)]
    means = [d / c if c else 0.0 for d, c in zip(durations, counts, strict=True)]
    top_c, bars_c = _bars(
        [float(c) for c in counts], [f"{lbl}: {c} invocations" for lbl, c in zip(labels, counts, strict=True)]
    )
    top_r, bars_r = _bars(rates, [f"{lbl}: {r:.0f}% errors" for lbl, r in zip(labels, rates, strict=True)])
    top_d, bars_d = _bars(means, [f"{lbl}: {m:.0f} ms mean" for lbl, m in zip(labels, means, strict=True)])
    total = sum(counts)
    failed = sum(errors)
    mean_all = sum(durations) / total if total else 0.0
    return (
        Chart("Invocations", "invocations", top_c, bars_c, f"{total} invocations in the window"),
        Chart(
            "Error rate",
            "%",
            top_r,
            bars_r,
            f"{failed} of {total} failed ({(100.0 * failed / total) if total else 0.0:.0f}%)",
        ),
        Chart("Duration", "ms", top_d, bars_d, f"mean duration {mean_all:.0f} ms"),
    )
