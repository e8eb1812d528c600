"""Cost of sealed parameters and input schemas on the warm invoke path.

Two actions on one server, invoked alternately so both see the same machine state: `plain`
(no parameters, no schema) and `guarded` (5 encrypted bound parameters and an input schema).
Reported as a ratio guarded/plain. Target (issue: web actions, sealed parameters, secrets): < 5%.
Also the in-process cost per invoke of opening 5 sealed values and validating the schema.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from common import start_stockade, stop

N = int(os.environ.get("BENCH_N", "1000"))
CODE = "def main(args):\n    return {'n': len(args)}\n"
SCHEMA = {
    "type": "object",
    "properties": {"q": {"type": "string", "maxLength": 64}, "n": {"type": "integer", "minimum": 0}},
    "required": ["q"],
}


def interleaved(client: httpx.Client, urls: list[str], n: int) -> list[list[float]]:
    samples: list[list[float]] = [[] for _ in urls]
    for _ in range(50):
        for url in urls:
            client.post(url, json={"q": "x", "n": 1}).raise_for_status()
    for _ in range(n):
        for i, url in enumerate(urls):
            t0 = time.perf_counter()
            client.post(url, json={"q": "x", "n": 1}).raise_for_status()
            samples[i].append((time.perf_counter() - t0) * 1000)
    return samples


async def in_process_cost() -> tuple[float, float]:
    """Microseconds per invoke to open 5 sealed values, and to validate the schema."""
    from stockade.config import Settings
    from stockade.domain import EntityPath, Identity, SystemClock
    from stockade.services import build_services
    from stockade.store import open_sqlite_store
    from stockade.testing import InProcessRunner

    data = Path(tempfile.mkdtemp(prefix="stockade-bench-"))
    store = open_sqlite_store(data / "db.sqlite")
    await store.open()
    services = build_services(Settings(data_dir=data), store, InProcessRunner(), SystemClock())
    key = await services.namespaces.create("ns")
    identity = Identity("ns", "ns", key.uuid)
    body = {
        "exec": {"kind": "python:3", "code": CODE},
        "parameters": [{"key": f"p{i}", "value": f"secret-{i}" * 4} for i in range(5)],
        "annotations": [{"key": "input-schema", "value": SCHEMA}],
    }
    await services.actions.put(identity, EntityPath("ns", "g"), body, overwrite=False)
    action = await services.catalog.action("ns", "g")
    params = {kv.key: kv.value for kv in action.parameters}
    rounds = 2000
    t0 = time.perf_counter()
    for _ in range(rounds):
        await services.vault.reveal(params)
    open_us = (time.perf_counter() - t0) / rounds * 1e6
    from stockade.services.schemas import SchemaCache

    cache = SchemaCache()
    t0 = time.perf_counter()
    for _ in range(rounds):
        cache.validate(action, {"q": "x", "n": 1})
    schema_us = (time.perf_counter() - t0) / rounds * 1e6
    await store.close()
    return open_us, schema_us


def main() -> None:
    sandbox = os.environ.get("BENCH_SANDBOX", "linux")
    proc, url, auth, _data = start_stockade(sandbox=sandbox)
    try:
        uuid, key = auth.split(":", 1)
        client = httpx.Client(auth=(uuid, key), timeout=30)
        base = f"{url}/api/v1/namespaces/_/actions"
        client.put(f"{base}/plain", json={"exec": {"kind": "python:3", "code": CODE}}).raise_for_status()
        client.put(
            f"{base}/guarded",
            json={
                "exec": {"kind": "python:3", "code": CODE},
                "parameters": [{"key": f"p{i}", "value": f"secret-{i}" * 4} for i in range(5)],
                "annotations": [{"key": "input-schema", "value": SCHEMA}],
            },
        ).raise_for_status()
        plain, guarded = interleaved(
            client, [f"{base}/plain?blocking=true&result=true", f"{base}/guarded?blocking=true&result=true"], N
        )
    finally:
        stop(proc)
    open_us, schema_us = asyncio.run(in_process_cost())
    p50_plain, p50_guarded = statistics.median(plain), statistics.median(guarded)
    ratio = p50_guarded / p50_plain
    print(f"sandbox backend: {sandbox}; {N} interleaved warm blocking invokes each")
    print(f"plain action:   p50 {p50_plain:.3f} ms, mean {statistics.fmean(plain):.3f} ms")
    print(
        f"guarded action: p50 {p50_guarded:.3f} ms, mean {statistics.fmean(guarded):.3f} ms (5 sealed params + schema)"
    )
    print(
        f"ratio guarded/plain: p50 {ratio:.3f}x ({(ratio - 1) * 100:+.1f}%), mean "
        f"{statistics.fmean(guarded) / statistics.fmean(plain):.3f}x (target < 5%: {'met' if ratio < 1.05 else 'NOT met'})"
    )
    print(f"in-process: opening 5 sealed values {open_us:.1f} us/invoke; schema validation {schema_us:.1f} us/invoke")


if __name__ == "__main__":
    main()
