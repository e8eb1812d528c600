"""Scale-out vs standalone: warm blocking-invoke latency and throughput, side by side (issue 15).

The standalone platform and a loopback cluster (scripts/cluster: PostgreSQL, NATS JetStream, one
controller, one invoker, so that only the extra hops differ) run in this same run with the same
sandbox backend; the figures are ratios (cluster / standalone) and the p50 difference is the cost
per activation of the extra hops (seal, publish + PubAck, fetch, open, result message, PostgreSQL
instead of SQLite).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import httpx
from bench_invoke import PY, throughput

from common import latencies_ms, pct, start_stockade, stop, summary

N = int(os.environ.get("BENCH_N", "300"))
THROUGHPUT_S = float(os.environ.get("BENCH_THROUGHPUT_S", "3"))
ROOT = Path(__file__).resolve().parent.parent


def measure(url: str, auth: str) -> tuple[list[float], float]:
    uuid, key = auth.split(":", 1)
    client = httpx.Client(auth=(uuid, key), timeout=30)
    r = client.put(
        f"{url}/api/v1/namespaces/_/actions/bpy?overwrite=true", json={"exec": {"kind": "python:3", "code": PY}}
    )
    r.raise_for_status()
    invoke = f"{url}/api/v1/namespaces/_/actions/bpy?blocking=true&result=true"
    lat = latencies_ms(lambda: client.post(invoke, json={"name": "bench"}).raise_for_status(), N)
    basic = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    return lat, asyncio.run(throughput(invoke, basic, THROUGHPUT_S))


def main() -> None:
    sandbox = os.environ.get("BENCH_SANDBOX", "linux")
    proc, url, auth, _data = start_stockade(sandbox=sandbox)
    try:
        alone, alone_tput = measure(url, auth)
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
    )
    try:
        info = json.loads((state / "cluster.json").read_text())
        props = dict(line.split("=", 1) for line in (state / "wskprops").read_text().splitlines() if "=" in line)
        cluster, cluster_tput = measure(f"http://127.0.0.1:{info['controllers'][0]}", props["AUTH"])
    finally:
        subprocess.run([script, "--dir", str(state), "stop"], check=False, stdout=subprocess.DEVNULL)
    print(f"sandbox backend: {sandbox}; {N} sequential warm blocking invokes each, 8 concurrent for throughput")
    print(f"standalone: {summary(alone)}, throughput {alone_tput:.0f}/s")
    print(
        f"cluster (1 controller, 1 invoker, PostgreSQL, JetStream): {summary(cluster)}, throughput {cluster_tput:.0f}/s"
    )
    print(
        f"ratio cluster/standalone: p50 {statistics.median(cluster) / statistics.median(alone):.2f}x, "
        f"p99 {pct(cluster, 0.99) / pct(alone, 0.99):.2f}x, throughput {cluster_tput / alone_tput:.2f}x; "
        f"extra hops cost {statistics.median(cluster) - statistics.median(alone):.2f} ms per activation at p50"
    )


if __name__ == "__main__":
    main()
