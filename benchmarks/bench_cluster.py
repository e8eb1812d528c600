"""Scale-out vs standalone: warm blocking-invoke latency and throughput, side by side (issue 15).

The standalone platform and a loopback cluster (scripts/cluster: PostgreSQL, NATS JetStream, one
controller, one invoker, so that only the extra hops differ) run in this same run with the same
sandbox backend, both loaded by wrk; the figures are ratios (cluster / standalone) and the p50 difference is the cost
per activation of the extra hops (seal, publish + PubAck, fetch, open, result message, PostgreSQL
instead of SQLite).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from pathlib import Path

import httpx
from bench_invoke import PY, SECONDS, wrk

from common import start_stockade, stop

ROOT = Path(__file__).resolve().parent.parent


def measure(url: str, auth: str) -> dict[int, dict[str, int]]:
    """wrk at 1 connection (latency), 8 (throughput) and 64 (beyond one invoker's 16 slots), after a warm-up."""
    uuid, key = auth.split(":", 1)
    client = httpx.Client(auth=(uuid, key), timeout=30)
    r = client.put(
        f"{url}/api/v1/namespaces/_/actions/bpy?overwrite=true", json={"exec": {"kind": "python:3", "code": PY}}
    )
    r.raise_for_status()
    invoke = f"{url}/api/v1/namespaces/_/actions/bpy?blocking=true&result=true"
    for _ in range(20):
        client.post(invoke, json={}).raise_for_status()
    basic = "Basic " + base64.b64encode(auth.encode()).decode()
    wrk(invoke, basic, 8, 2)  # warm-up
    figures = {c: wrk(invoke, basic, c) for c in (1, 8, 64)}
    for c, stats in figures.items():
        failed = stats["non2xx"] + stats["timeouts"] + stats["connect"] + stats["read"]
        if failed:
            raise RuntimeError(f"{failed} failed requests at {c} connections: {stats}")
    return figures


def main() -> None:
    sandbox = os.environ.get("BENCH_SANDBOX", "linux")
    proc, url, auth, _data = start_stockade(sandbox=sandbox)
    try:
        alone = measure(url, auth)
    finally:
        stop(proc)
    state = Path(tempfile.mkdtemp(prefix="stockade-bench-cluster-"))
    script = str(ROOT / "scripts" / "cluster")
    subprocess.run(
        [
            script,
            "--dir",
            str(state),
            "start",
            "--port",
            "0",
            "--controllers",
            "1",
            "--invokers",
            "1",
            "--sandbox",
            sandbox,
            "--invocations-per-minute",
            "100000000",
            "--concurrent-invocations",
            "1000",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        # As for the standalone server (common.start_stockade): every connection comes from wrk's
        # one address, and at the edge's cap of 64 a connection still closing from the previous
        # run makes one of 64 new ones a 503.
        env={**os.environ, "STOCKADE_HTTP__MAX_CONNECTIONS_PER_ADDRESS": "128"},
    )
    try:
        info = json.loads((state / "cluster.json").read_text())
        props = dict(line.split("=", 1) for line in (state / "wskprops").read_text().splitlines() if "=" in line)
        cluster = measure(f"http://127.0.0.1:{info['controllers'][0]}", props["AUTH"])
    finally:
        subprocess.run([script, "--dir", str(state), "stop"], check=False, stdout=subprocess.DEVNULL)
    a, c = alone, cluster
    print(f"sandbox backend: {sandbox}; wrk {SECONDS}s per figure; the invoker has 16 slots")
    print("| figure | standalone | cluster (1 controller, 1 invoker, PostgreSQL, JetStream) | ratio |")
    print("|---|---|---|---|")
    print(
        f"| 1 conn p50 | {a[1]['p50_us'] / 1000:.2f} ms | {c[1]['p50_us'] / 1000:.2f} ms"
        f" | {c[1]['p50_us'] / a[1]['p50_us']:.2f}x (+{(c[1]['p50_us'] - a[1]['p50_us']) / 1000:.2f} ms of extra hops) |"
    )
    print(
        f"| 1 conn p99 | {a[1]['p99_us'] / 1000:.2f} ms | {c[1]['p99_us'] / 1000:.2f} ms"
        f" | {c[1]['p99_us'] / a[1]['p99_us']:.2f}x |"
    )
    for n in (8, 64):
        print(f"| {n} conn throughput | {a[n]['rps']:,}/s | {c[n]['rps']:,}/s | {c[n]['rps'] / a[n]['rps']:.2f}x |")
    print(
        f"| 64 conn p99 | {a[64]['p99_us'] / 1000:.1f} ms | {c[64]['p99_us'] / 1000:.1f} ms"
        f" | {c[64]['p99_us'] / a[64]['p99_us']:.2f}x |"
    )


if __name__ == "__main__":
    main()
