"""Anomaly detectors and monitoring overhead.

1. Detector evaluation: precision and recall of each detector on seeded synthetic traffic with
   injected anomalies (stockade/testing/anomalies.py), several seeds; also the detectors' own
   cost per activation.
2. Per-invocation overhead of metrics + detection: the same blocking invokes through one set of
   services over InProcessRunner (no sandbox, so the platform's own path is all that is timed),
   with the invoke path's monitor on (Metrics, detection queue, detectors) and off (none), in
   interleaved blocks so both see the same machine state. Detection runs inside the timed region
   (the queue is drained per block), so deferred work is counted too. Reported as the median of
   paired block ratios on/off, beside an off/off run (the noise floor) and the direct cost of the
   monitor timed alone. Target (issue 8): < 3%.

Times are CPU time of this process (``time.process_time``), not wall time: the work is CPU-bound
in one process, and CPU time is not inflated when other processes share the machine.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import structlog

from stockade.config import ObservabilitySettings, Settings
from stockade.domain import Activation, ActivationResponse, ActivationStatus, EntityPath, Identity, SystemClock
from stockade.observability.anomaly import AnomalyMonitor
from stockade.observability.metrics import Metrics, NullMetrics
from stockade.services import InvokeRequest, Services, build_services
from stockade.services.monitoring import ActivationMonitor
from stockade.store import open_sqlite_store
from stockade.testing import InProcessRunner
from stockade.testing.anomalies import WORKLOADS, evaluate, observations

BLOCKS = int(os.environ.get("BENCH_BLOCKS", "60"))
BLOCK = int(os.environ.get("BENCH_BLOCK", "200"))
SEEDS = (7, 23, 101)
CODE = """\
def main(args):
    print("processing order", args.get("order", 0), "for customer 42")
    return {"order": args.get("order", 0), "status": "ok", "total": 12.5, "items": [1, 2]}
"""


def report_detectors() -> None:
    print("== detector evaluation (precision / recall on injected anomalies)")
    for name in WORKLOADS:
        scores = [evaluate(name, seed=seed, actions=20, per_action=1500) for seed in SEEDS]
        tp = sum(s.true_positives for s in scores)
        fp = sum(s.false_positives for s in scores)
        fn = sum(s.false_negatives for s in scores)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        count = sum(s.observations for s in scores)
        print(
            f"{name:<16} precision {precision:.3f}  recall {recall:.3f}  "
            f"(TP {tp}, FP {fp}, FN {fn}; {count} activations, seeds {', '.join(map(str, SEEDS))})"
        )
    print("== detector cost per activation (all detectors on, one workload at a time)")
    for name in WORKLOADS:
        obs = observations(name, seed=7, actions=10, per_action=1000)
        monitor = AnomalyMonitor()
        started = time.process_time()
        for o in obs:
            monitor.observe(o)
        print(f"{name:<16} {(time.process_time() - started) / len(obs) * 1e6:6.1f} us")


async def _services(data: Path, monitored: bool) -> tuple[Services, Identity]:
    """Services over a fresh store, with one tagged action ``a`` deployed."""
    settings = replace(
        Settings(data_dir=data),
        observability=ObservabilitySettings(anomaly_detection=monitored),
        limits=replace(Settings().limits, invocations_per_minute=10**9, concurrent_invocations=10**6),
    )
    store = open_sqlite_store(data / "db.sqlite")
    await store.open()
    metrics = Metrics() if monitored else NullMetrics()
    services = build_services(settings, store, InProcessRunner(), SystemClock(), metrics=metrics)
    services.recorder.start()
    services.monitoring.events.start()
    key = await services.namespaces.create("ns")
    identity = Identity("ns", "ns", key.uuid)
    body = {"exec": {"kind": "python:3", "code": CODE}, "annotations": [{"key": "tags", "value": ["bench"]}]}
    await services.actions.put(identity, EntityPath("ns", "a"), body, overwrite=False)
    return services, identity


async def _block(services: Services, identity: Identity, n: int) -> float:
    path = EntityPath("ns", "a")
    started = time.process_time()
    for i in range(n):
        result = await services.invoke.invoke(
            InvokeRequest(identity=identity, path=path, params={"order": i}, blocking=True)
        )
        assert result.activation is not None
        assert result.activation.response.success
    services.monitoring.activations.detect_pending()
    return (time.process_time() - started) / n * 1e6


async def _direct_cost(services: Services) -> float:
    """Microseconds per activation spent in ActivationMonitor.finished + detection, timed alone."""
    monitor = services.monitoring.activations
    action = await services.catalog.action("ns", "a")
    logs = ("2026-01-01T00:00:00.000000Z stdout: processing order 7 for customer 42",)
    activations = [
        Activation(
            f"{i:032x}",
            "ns",
            "ns",
            "a",
            action.version,
            10_000_000 + i * 50,
            10_000_000 + i * 50 + 1,
            ActivationResponse(ActivationStatus.SUCCESS, {"order": i, "status": "ok", "total": 12.5, "items": [1, 2]}),
            logs=logs,
        )
        for i in range(20_000)
    ]
    best = float("inf")
    # Best of 5 runs in chunks of 1,000 (as the worker drains its queue): the monitor's own cost.
    for _ in range(5):
        started = time.process_time()
        for offset in range(0, len(activations), 1000):
            for activation in activations[offset : offset + 1000]:
                monitor.finished(activation, action, init_time_ms=None, timed_out=False)
            monitor.detect_pending()
        best = min(best, (time.process_time() - started) / len(activations) * 1e6)
    return best


async def _paired(services: Services, identity: Identity, on: ActivationMonitor | None, off: ActivationMonitor | None):
    """Per-block µs/invoke with monitor ``on`` and ``off``, alternating which goes first."""
    samples_on: list[float] = []
    samples_off: list[float] = []
    for i in range(BLOCKS):
        order = ((on, samples_on), (off, samples_off))
        for monitor, samples in order if i % 2 == 0 else reversed(order):
            services.invoke._monitor = monitor  # the benchmark swaps the seam; nothing else changes
            await services.recorder.flush()
            gc.collect()  # each block starts with the same heap and no pending writes
            samples.append(await _block(services, identity, BLOCK))
    return samples_on, samples_off


def _paired_ratio(on: list[float], off: list[float]) -> float:
    """Geometric mean of the per-pair ratios, 10% trimmed at each end.

    Adjacent blocks share the machine's state, which cancels drift; the pairs alternate which
    block runs first, and the geometric mean cancels that position effect exactly (a median
    would pick one side of it).
    """
    logs = sorted(math.log(a / b) for a, b in zip(on, off, strict=True))
    trim = len(logs) // 10
    kept = logs[trim : len(logs) - trim] or logs
    return math.exp(statistics.fmean(kept))


async def report_overhead() -> None:
    print("== per-invocation overhead of metrics + detection (in-process, InProcessRunner)")
    # One set of services, one store, one loop: only the monitor on the invoke path changes
    # between blocks (the real one: Metrics + detection; or none at all).
    services, identity = await _services(Path(tempfile.mkdtemp(prefix="stockade-bench-")), True)
    monitor = services.monitoring.activations
    await _block(services, identity, BLOCK)  # warm-up: caches, baselines, code paths
    noise_a, noise_b = await _paired(services, identity, None, None)
    samples_on, samples_off = await _paired(services, identity, monitor, None)
    p50_on, p50_off = statistics.median(samples_on), statistics.median(samples_off)
    paired = _paired_ratio(samples_on, samples_off)
    noise = _paired_ratio(noise_a, noise_b)
    counted = services.monitoring.metrics.value("stockade_invocations_total", {"kind": "python:3", "status": "success"})
    print(f"{BLOCKS} interleaved block pairs of {BLOCK} blocking invokes ({int(counted)} counted with metrics on)")
    print(f"monitoring off: p50 {p50_off:.1f} us/invoke, mean {statistics.fmean(samples_off):.1f} us")
    print(f"monitoring on:  p50 {p50_on:.1f} us/invoke, mean {statistics.fmean(samples_on):.1f} us")
    print(
        f"ratio on/off: paired blocks {paired:.4f}x ({(paired - 1) * 100:+.2f}%), "
        f"p50s {p50_on / p50_off:.4f}x; target < 3%: {'met' if paired < 1.03 else 'NOT met'}"
    )
    print(f"noise floor (off/off, same schedule): {noise:.4f}x ({(noise - 1) * 100:+.2f}%)")
    direct = await _direct_cost(services)
    print(
        f"direct cost of metrics + detection: {direct:.1f} us/invocation "
        f"({direct / p50_off * 100:.1f}% of the {p50_off:.0f} us in-process invoke path)"
    )
    await services.monitoring.close()
    await services.recorder.close()
    await services.store.close()


def main() -> None:
    # The benchmark measures the platform, not log rendering: log output is dropped.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    report_detectors()
    asyncio.run(report_overhead())


if __name__ == "__main__":
    main()
