"""Sandbox backend: cold start, warm round trip against an unsandboxed runner, creation rate, idle memory.

Drives LinuxSandboxBackend and InsecureProcessBackend directly with runtime-protocol frames (no
HTTP), both in this run, so the warm overhead is a same-machine difference. Targets (issue 3):
Python cold start p50 < 15 ms, warm overhead < 0.2 ms, idle Python sandbox < 8 MB PSS.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from stockade.sandbox.insecure_process import InsecureProcessBackend
from stockade.sandbox.linux import LinuxSandboxBackend
from stockade.sandbox.spec import SandboxSpec

N_COLD = int(os.environ.get("BENCH_N_COLD", "60"))
N_COLD_NODE = int(os.environ.get("BENCH_N_COLD_NODE", "20"))
N_WARM = int(os.environ.get("BENCH_N_WARM", "2000"))
N_IDLE = int(os.environ.get("BENCH_N_IDLE", "20"))
RATE_S = float(os.environ.get("BENCH_RATE_S", "3"))
# Cold starts are measured one at a time with this pause before each, so one start's teardown and the
# refill of the prepared slots do not land inside the next measurement (the creation rate covers
# back-to-back starts).
COLD_GAP_S = float(os.environ.get("BENCH_COLD_GAP_MS", "50")) / 1000
PY = "def main(args):\n    return {'greeting': 'hello ' + str(args.get('name', 'world'))}\n"
JS = "function main(args) { return { greeting: 'hello ' + (args.name || 'world') }; }\nmodule.exports.main = main;\n"
_HEADER = struct.Struct(">I")


def code_dir(family: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"bench-sandbox-{family}-"))
    os.chmod(path, 0o755)  # noqa: S103 - the sandbox uid reads the code, like the invoker's code store
    if family == "python":
        (path / "__main__.py").write_text(PY)
    else:
        (path / "index.js").write_text(JS)
    return path


async def request(sandbox: Any, message: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    body = json.dumps(message).encode()
    await loop.sock_sendall(sandbox.control, _HEADER.pack(len(body)) + body)
    data = b""
    while True:
        if len(data) >= 4 and len(data) >= 4 + _HEADER.unpack_from(data)[0]:
            reply: dict[str, Any] = json.loads(data[4:])
            return reply
        chunk = await loop.sock_recv(sandbox.control, 65536)
        if not chunk:
            raise EOFError("runner closed the control socket")
        data += chunk


def drain(sandbox: Any) -> None:
    for fd in (sandbox.stdout_fd, sandbox.stderr_fd):
        try:
            while os.read(fd, 65536):
                pass
        except BlockingIOError:
            pass


async def init(sandbox: Any) -> None:
    reply = await request(
        sandbox, {"op": "init", "code_dir": sandbox.code_path, "main": "main", "binary": False, "env": {}}
    )
    assert reply.get("ok"), reply


async def run(sandbox: Any) -> None:
    reply = await request(sandbox, {"op": "run", "value": {"name": "x"}, "env": {}, "deadline_ms": 0, "cpu_ms": 0})
    assert reply.get("ok"), reply


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def line(name: str, values_ms: list[float]) -> str:
    return f"{name:<58} p50 {pct(values_ms, 50):8.3f} ms   p95 {pct(values_ms, 95):8.3f} ms   (n={len(values_ms)})"


async def cold(backend: Any, family: str, path: Path, n: int) -> tuple[list[float], list[float]]:
    """Request to first result on a new sandbox; also request to ready (setup done)."""
    first_result, ready = [], []
    for _ in range(n + 3):
        await asyncio.sleep(COLD_GAP_S)
        began = time.perf_counter()
        sandbox = await backend.start(SandboxSpec(family=family, code_dir=path))  # type: ignore[arg-type]
        ready_at = time.perf_counter()
        await init(sandbox)
        await run(sandbox)
        done = time.perf_counter()
        first_result.append((done - began) * 1000)
        ready.append((ready_at - began) * 1000)
        await sandbox.kill()
    return first_result[3:], ready[3:]


async def warm(backend: Any, family: str, path: Path) -> list[float]:
    sandbox = await backend.start(SandboxSpec(family=family, code_dir=path))  # type: ignore[arg-type]
    await init(sandbox)
    times = []
    for index in range(N_WARM + 100):
        began = time.perf_counter()
        await run(sandbox)
        elapsed = (time.perf_counter() - began) * 1000
        if index >= 100:
            times.append(elapsed)
        if index % 50 == 0:
            drain(sandbox)
    await sandbox.kill()
    return times


async def creation_rate(backend: LinuxSandboxBackend, path: Path, concurrency: int) -> float:
    """Python sandboxes created and set up per second, ``concurrency`` requests in flight."""
    deadline = time.perf_counter() + RATE_S
    created = 0

    async def worker() -> None:
        nonlocal created
        while time.perf_counter() < deadline:
            sandbox = await backend.start(SandboxSpec(family="python", code_dir=path))
            created += 1
            await sandbox.kill()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return created / (time.perf_counter() - began)


def pss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for row in handle:
            if row.startswith("Pss:"):
                return int(row.split()[1])
    return 0


def sandbox_pids(sandbox: Any) -> list[int]:
    found, pending = [sandbox.pid], [sandbox.pid]
    while pending:
        current = pending.pop()
        for task in os.listdir(f"/proc/{current}/task"):
            with open(f"/proc/{current}/task/{task}/children") as handle:
                children = [int(c) for c in handle.read().split()]
            found += children
            pending += children
    return found


async def idle_pss(backend: LinuxSandboxBackend, family: str, path: Path, n: int) -> float:
    """Mean PSS (MB) of one idle, initialised sandbox (reaper + runner) with ``n`` of them live."""
    live = []
    for _ in range(n):
        sandbox = await backend.start(SandboxSpec(family=family, code_dir=path))  # type: ignore[arg-type]
        await init(sandbox)
        await run(sandbox)
        live.append(sandbox)
    await asyncio.sleep(0.5)
    totals = [sum(pss_kb(pid) for pid in sandbox_pids(sandbox)) for sandbox in live]
    for sandbox in live:
        await sandbox.kill()
    return statistics.mean(totals) / 1024


async def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    linux = LinuxSandboxBackend()
    report = linux.report()
    print(f"backend: {report.name}, mode {report.mode}")
    for warning in report.warnings:
        print(f"  warning: {warning}")
    if report.mode == "unavailable":
        return 1
    insecure = InsecureProcessBackend()
    began = time.perf_counter()
    await linux.prepare()
    print(f"zygote start: {(time.perf_counter() - began) * 1000:.0f} ms")
    py, js = code_dir("python"), code_dir("nodejs")
    try:
        py_cold, py_ready = await cold(linux, "python", py, N_COLD)
        js_cold, js_ready = await cold(linux, "nodejs", js, N_COLD_NODE)
        print(f"(cold starts one at a time, {COLD_GAP_S * 1000:.0f} ms apart)")
        print(line("cold start, request -> first result, Python", py_cold))
        print(line("  of which request -> sandbox ready, Python", py_ready))
        print(line("cold start, request -> first result, Node.js", js_cold))
        print(line("  of which request -> sandbox ready (node exec'd), Node.js", js_ready))
        for family, path in (("python", py), ("nodejs", js)):
            sandboxed = await warm(linux, family, path)
            plain = await warm(insecure, family, path)
            s50, p50 = pct(sandboxed, 50), pct(plain, 50)
            print(line(f"warm round trip, sandboxed, {family}", sandboxed))
            print(line(f"warm round trip, unsandboxed runner, {family}", plain))
            print(f"  warm overhead {family}: {s50 - p50:+.3f} ms at p50 (ratio {s50 / p50:.2f})")
        for concurrency in (1, os.cpu_count() or 2):
            rate = await creation_rate(linux, py, concurrency)
            print(f"creation rate, Python, {concurrency} in flight: {rate:.0f} sandboxes/s")
        print(f"idle PSS per warm Python sandbox ({N_IDLE} live): {await idle_pss(linux, 'python', py, N_IDLE):.2f} MB")
        print(f"idle PSS per warm Node.js sandbox (5 live): {await idle_pss(linux, 'nodejs', js, 5):.2f} MB")
        print("targets: Python cold p50 < 15 ms, warm overhead < 0.2 ms, idle Python < 8 MB PSS")
    finally:
        await linux.close()
        await insecure.close()
        shutil.rmtree(py, ignore_errors=True)
        shutil.rmtree(js, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
