"""The cost of durable activation records (issue 17) as ratios against today's write-behind.

"Today" is the platform at ``BENCH_BASELINE_REF`` (default: the commit before issue 17), taken
from git into a temporary directory and run side by side with this tree's, on loopback, with
the same settings. Measured: warm blocking-invoke latency (sequential), blocking throughput at
8 and 32 concurrent callers, and non-blocking (202) throughput at 32 concurrent callers, where
every accepted activation is now journalled before its 202 and recorded before the response.
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from common import REPO, latencies_ms, pct, start_stockade, stop, summary

BASELINE_REF = os.environ.get("BENCH_BASELINE_REF", "5565ae4")
N = int(os.environ.get("BENCH_N", "300"))
SECONDS = float(os.environ.get("BENCH_THROUGHPUT_S", "3"))
PY = "def main(args):\n    return {'greeting': 'hello ' + str(args.get('name', 'world'))}\n"


def baseline_src() -> Path:
    out = Path(tempfile.mkdtemp(prefix="stockade-today-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BASELINE_REF, "src"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out / "src"


async def throughput(url: str, auth: str, concurrency: int, expect: int) -> float:
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as client:
        count = 0
        deadline = time.perf_counter() + SECONDS

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                r = await client.post(url, json={"name": "bench"})
                assert r.status_code == expect, r.text
                count += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - t0)


def measure(url: str, auth: str) -> dict[str, float | list[float]]:
    uuid, key = auth.split(":", 1)
    client = httpx.Client(auth=(uuid, key), timeout=60)
    client.put(
        f"{url}/api/v1/namespaces/_/actions/b?overwrite=true", json={"exec": {"kind": "python:3", "code": PY}}
    ).raise_for_status()
    blocking = f"{url}/api/v1/namespaces/_/actions/b?blocking=true&result=true"
    lat = latencies_ms(lambda: client.post(blocking, json={"name": "bench"}).raise_for_status(), N)
    return {
        "latency": lat,
        "blocking_8": asyncio.run(throughput(blocking, auth, 8, 200)),
        "blocking_32": asyncio.run(throughput(blocking, auth, 32, 200)),
        "async_32": asyncio.run(throughput(f"{url}/api/v1/namespaces/_/actions/b", auth, 32, 202)),
    }


def main() -> None:
    sandbox = os.environ.get("BENCH_SANDBOX", "linux")
    today_proc, today_url, today_auth, _ = start_stockade({"PYTHONPATH": str(baseline_src())}, sandbox=sandbox)
    now_proc, now_url, now_auth, _ = start_stockade(sandbox=sandbox)
    try:
        # Alternate rounds so that both see the same machine load.
        today, now = measure(today_url, today_auth), measure(now_url, now_auth)
        today2, now2 = measure(today_url, today_auth), measure(now_url, now_auth)
        print(f"sandbox backend: {sandbox}; today = {BASELINE_REF}; {N} sequential, {SECONDS:.0f} s per throughput run")
        lat_t = today["latency"] + today2["latency"]  # type: ignore[operator]
        lat_n = now["latency"] + now2["latency"]  # type: ignore[operator]
        print(f"today   warm blocking invoke: {summary(lat_t)}")
        print(f"durable warm blocking invoke: {summary(lat_n)}")
        print(
            f"latency ratio durable/today: p50 {statistics.median(lat_n) / statistics.median(lat_t):.2f}x, "
            f"p99 {pct(lat_n, 0.99) / pct(lat_t, 0.99):.2f}x"
        )
        for key, label in (
            ("blocking_8", "blocking, 8 callers"),
            ("blocking_32", "blocking, 32 callers"),
            ("async_32", "non-blocking 202s, 32 callers"),
        ):
            t = (today[key] + today2[key]) / 2  # type: ignore[operator]
            n = (now[key] + now2[key]) / 2  # type: ignore[operator]
            print(f"throughput {label}: today {t:.0f}/s, durable {n:.0f}/s, ratio {n / t:.2f}x")
    finally:
        stop(now_proc)
        stop(today_proc)


if __name__ == "__main__":
    main()
