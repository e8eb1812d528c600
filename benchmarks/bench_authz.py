"""Cost of authorization on the warm invoke path.

Two servers side by side in this run, identical but for the role checks (skipped in one through
the benchmark-only ``authz_server.py``); warm blocking invokes alternate between them. Reported
as a ratio enforced/skipped. Target (issue: identity and access): under 5%.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from common import free_port, stop, wait_auth, wait_http

N = int(os.environ.get("BENCH_N", "1000"))
CODE = "def main(args):\n    return {'ok': True}\n"


def start(enforce: bool, backend: str) -> tuple[subprocess.Popen, str, httpx.Client]:
    data = Path(tempfile.mkdtemp(prefix="stockade-bench-authz-"))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "authz_server.py", str(port), str(data), "on" if enforce else "off", backend],
        cwd=Path(__file__).parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(data / "server.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc)
    uuid, key = wait_auth(data).split(":", 1)
    client = httpx.Client(auth=(uuid, key), timeout=30)
    client.put(
        f"{url}/api/v1/namespaces/_/actions/b", json={"exec": {"kind": "python:3", "code": CODE}}
    ).raise_for_status()
    return proc, url, client


def main() -> None:
    backend = os.environ.get("BENCH_SANDBOX", "linux")
    on_proc, on_url, on_client = start(True, backend)
    off_proc, off_url, off_client = start(False, backend)
    try:
        pairs = [
            (on_client, f"{on_url}/api/v1/namespaces/_/actions/b?blocking=true&result=true"),
            (off_client, f"{off_url}/api/v1/namespaces/_/actions/b?blocking=true&result=true"),
        ]
        samples: list[list[float]] = [[], []]
        for _ in range(50):
            for client, url in pairs:
                client.post(url, json={}).raise_for_status()
        for _ in range(N):
            for i, (client, url) in enumerate(pairs):
                t0 = time.perf_counter()
                client.post(url, json={}).raise_for_status()
                samples[i].append((time.perf_counter() - t0) * 1000)
    finally:
        stop(on_proc)
        stop(off_proc)
    enforced, skipped = statistics.median(samples[0]), statistics.median(samples[1])
    ratio = enforced / skipped
    print(f"sandbox backend: {backend}; {N} alternating warm blocking invokes per server")
    print(f"authorization enforced: p50 {enforced:.3f} ms, mean {statistics.fmean(samples[0]):.3f} ms")
    print(f"authorization skipped:  p50 {skipped:.3f} ms, mean {statistics.fmean(samples[1]):.3f} ms")
    print(
        f"ratio enforced/skipped: p50 {ratio:.3f}x ({(ratio - 1) * 100:+.1f}%) (target < 5%: {'met' if ratio < 1.05 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
