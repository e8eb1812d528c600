"""Warm blocking-invoke latency and throughput of Stockade vs an in-process ASGI baseline.

Both servers run side by side in this run on loopback; the figures are reported as ratios
(Stockade / baseline). Target (issue: core platform): p50 within 2x of the baseline.
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import time

import httpx

from common import latencies_ms, pct, start_baseline, start_stockade, stop, summary

N = int(os.environ.get("BENCH_N", "400"))
THROUGHPUT_S = float(os.environ.get("BENCH_THROUGHPUT_S", "3"))
CONCURRENCY = 8
PY = "def main(args):\n    return {'greeting': 'hello ' + str(args.get('name', 'world'))}\n"
JS = "function main(args) { return { greeting: 'hello ' + (args.name || 'world') }; }\n"


async def throughput(url: str, headers: dict[str, str], seconds: float) -> float:
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        count = 0
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                r = await client.post(url, json={"name": "bench"})
                r.raise_for_status()
                count += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return count / (time.perf_counter() - t0)


def main() -> None:
    sandbox = os.environ.get("BENCH_SANDBOX", "linux")
    base_proc, base_url = start_baseline()
    sk_proc, sk_url, auth, _data = start_stockade(sandbox=sandbox)
    try:
        uuid, key = auth.split(":", 1)
        client = httpx.Client(auth=(uuid, key), timeout=30)
        for name, kind, code in (("bpy", "python:3", PY), ("bjs", "nodejs:20", JS)):
            r = client.put(
                f"{sk_url}/api/v1/namespaces/_/actions/{name}?overwrite=true",
                json={"exec": {"kind": kind, "code": code}},
            )
            r.raise_for_status()
        base_client = httpx.Client(timeout=30)
        baseline = latencies_ms(
            lambda: base_client.post(f"{base_url}/invoke", json={"name": "bench"}).raise_for_status(), N
        )
        base_tput = asyncio.run(throughput(f"{base_url}/invoke", {}, THROUGHPUT_S))
        print(f"sandbox backend: {sandbox}; {N} sequential requests each, {CONCURRENCY} concurrent for throughput")
        print(f"baseline (in-process ASGI): {summary(baseline)}, throughput {base_tput:.0f}/s")
        basic = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
        for name, label in (("bpy", "python:3"), ("bjs", "nodejs:20")):
            url = f"{sk_url}/api/v1/namespaces/_/actions/{name}?blocking=true&result=true"
            lat = latencies_ms(lambda url=url: client.post(url, json={"name": "bench"}).raise_for_status(), N)
            tput = asyncio.run(throughput(url, basic, THROUGHPUT_S))
            p50_ratio = statistics.median(lat) / statistics.median(baseline)
            p99_ratio = pct(lat, 0.99) / pct(baseline, 0.99)
            print(
                f"stockade {label} warm blocking invoke: {summary(lat)}, throughput {tput:.0f}/s | "
                f"ratio vs baseline: p50 {p50_ratio:.2f}x, p99 {p99_ratio:.2f}x, "
                f"throughput {tput / base_tput:.2f}x (target p50 <= 2x: {'met' if p50_ratio <= 2 else 'NOT met'})"
            )
    finally:
        stop(sk_proc)
        stop(base_proc)


if __name__ == "__main__":
    main()
