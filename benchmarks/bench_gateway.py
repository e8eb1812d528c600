"""The API gateway's overhead per request, as a ratio to the same action called as a web action.

One server, one action, three ways in, called in turn so all see the same machine state:
`web` (POST /api/v1/web/{ns}/default/echo.json), `gateway` (POST /api/gw/{ns}/bench/echo through
a route with auth none, a JSON Schema, a client and a route token bucket, and daily and monthly
quotas, all generous enough never to refuse) and `invoke` (the authenticated blocking REST
invoke, for reference). The gateway's extra work per request: route matching, the schema, two
buckets and a quota lease (one store write per block of requests). Also the in-process cost of
the gateway pipeline around the same invoke, without HTTP or a sandbox.
BENCH_SANDBOX picks the sandbox backend (default linux); BENCH_N the number of requests each.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx

from stockade.domain import api_route_from_json

from common import start_stockade, stop

N = int(os.environ.get("BENCH_N", "1000"))
CODE = "def main(args):\n    return {'q': args.get('q'), 'n': args.get('n')}\n"
BODY = {"q": "x", "n": 1}
SCHEMA = {
    "type": "object",
    "properties": {"q": {"type": "string", "maxLength": 64}, "n": {"type": "integer", "minimum": 0}},
    "required": ["q"],
}
GENEROUS = {"capacity": 1_000_000, "refillPerSecond": 1_000_000}
ROUTE = {
    "basePath": "/bench",
    "relPath": "/echo",
    "verb": "POST",
    "action": "echo",
    "auth": "none",
    "requestSchema": SCHEMA,
    "clientRateLimit": GENEROUS,
    "routeRateLimit": GENEROUS,
    "quota": {"perDay": 10**11, "perMonth": 10**12},
}


def interleaved(targets: list[tuple[httpx.Client, str]], n: int) -> list[list[float]]:
    samples: list[list[float]] = [[] for _ in targets]
    for _ in range(50):
        for client, url in targets:
            client.post(url, json=BODY).raise_for_status()
    for _ in range(n):
        for i, (client, url) in enumerate(targets):
            t0 = time.perf_counter()
            client.post(url, json=BODY).raise_for_status()
            samples[i].append((time.perf_counter() - t0) * 1000)
    return samples


async def in_process_cost(rounds: int = 3000) -> tuple[float, float]:
    """Microseconds per request: the invoke alone, and the gateway pipeline around the same invoke."""
    from stockade.config import Settings
    from stockade.domain import EntityPath, Identity, SystemClock
    from stockade.gateway import Gateway, GatewayRequest
    from stockade.services import InvokeRequest, build_services
    from stockade.store import open_sqlite_store
    from stockade.testing import InProcessRunner

    data = Path(tempfile.mkdtemp(prefix="stockade-bench-"))
    base = Settings(data_dir=data)
    settings = replace(base, limits=replace(base.limits, invocations_per_minute=10**9, concurrent_invocations=10**6))
    store = open_sqlite_store(data / "db.sqlite")
    await store.open()
    services = build_services(settings, store, InProcessRunner(), SystemClock())
    services.recorder.start()
    key = await services.namespaces.create("ns")
    identity = Identity("ns", "ns", key.uuid)
    await services.actions.put(
        identity, EntityPath("ns", "echo"), {"exec": {"kind": "python:3", "code": CODE}}, overwrite=False
    )
    await services.apis.create(identity, api_route_from_json("ns", ROUTE), overwrite=False)
    gateway = Gateway(services)
    body = json.dumps(BODY).encode()

    async def read(limit: int) -> bytes:
        return body

    request = GatewayRequest(
        "POST", "/api/gw/ns/bench/echo", "", {"content-type": "application/json"}, "127.0.0.1", "http", "t", read
    )
    owner = Identity("ns", "ns", "", kind="owner")
    plain = InvokeRequest(owner, EntityPath("ns", "echo"), dict(BODY), blocking=True, seal="web")
    for _ in range(200):
        assert (await gateway.handle(request)).status == 200
        await services.invoke.invoke(plain)
    timings: dict[str, list[float]] = {"invoke": [], "gateway": []}
    for _ in range(rounds):
        t0 = time.perf_counter()
        await services.invoke.invoke(plain)
        timings["invoke"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await gateway.handle(request)
        timings["gateway"].append(time.perf_counter() - t0)
    await services.apis.close()
    await services.recorder.close()
    await store.close()
    return statistics.median(timings["invoke"]) * 1e6, statistics.median(timings["gateway"]) * 1e6


def main() -> None:
    sandbox = os.environ.get("BENCH_SANDBOX", "linux")
    proc, url, auth, _data = start_stockade(sandbox=sandbox)
    try:
        uuid, key = auth.split(":", 1)
        admin = httpx.Client(auth=(uuid, key), timeout=30)
        namespace = admin.get(f"{url}/api/v1/namespaces").json()[0]
        admin.put(
            f"{url}/api/v1/namespaces/_/actions/echo",
            json={"exec": {"kind": "python:3", "code": CODE}, "annotations": [{"key": "web-export", "value": True}]},
        ).raise_for_status()
        admin.put(f"{url}/api/v1/namespaces/_/apis", json=ROUTE).raise_for_status()
        anonymous = httpx.Client(timeout=30)
        web, gateway, invoke = interleaved(
            [
                (anonymous, f"{url}/api/v1/web/{namespace}/default/echo.json"),
                (anonymous, f"{url}/api/gw/{namespace}/bench/echo"),
                (admin, f"{url}/api/v1/namespaces/_/actions/echo?blocking=true&result=true"),
            ],
            N,
        )
    finally:
        stop(proc)
    invoke_us, gateway_us = asyncio.run(in_process_cost())
    p50_web, p50_gw = statistics.median(web), statistics.median(gateway)
    ratio = p50_gw / p50_web
    mean_ratio = statistics.fmean(gateway) / statistics.fmean(web)
    print(f"sandbox backend: {sandbox}; {N} interleaved warm requests each (same action)")
    print(f"web action:    p50 {p50_web:.3f} ms, mean {statistics.fmean(web):.3f} ms")
    print(
        f"gateway route: p50 {p50_gw:.3f} ms, mean {statistics.fmean(gateway):.3f} ms "
        "(auth none + schema + 2 token buckets + day/month quota)"
    )
    print(f"REST invoke:   p50 {statistics.median(invoke):.3f} ms (authenticated blocking invoke, for reference)")
    print(
        f"ratio gateway/web: p50 {ratio:.3f}x ({(ratio - 1) * 100:+.1f}%, {p50_gw - p50_web:+.3f} ms), "
        f"mean {mean_ratio:.3f}x"
    )
    print(f"ratio gateway/REST invoke: p50 {p50_gw / statistics.median(invoke):.3f}x")
    print(
        f"in-process (no HTTP, no sandbox): invoke {invoke_us:.1f} us, gateway around it {gateway_us:.1f} us "
        f"(pipeline {gateway_us - invoke_us:+.1f} us/request, {gateway_us / invoke_us:.2f}x)"
    )


if __name__ == "__main__":
    main()
