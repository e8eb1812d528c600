"""Shared helpers for benchmarks: servers on loopback, timing loops and report lines."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def start_stockade(
    extra_env: dict[str, str] | None = None, sandbox: str = "linux"
) -> tuple[subprocess.Popen, str, str, Path]:
    """A standalone Stockade with benchmark limits (no per-minute throttle in the way)."""
    data = Path(tempfile.mkdtemp(prefix="stockade-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "STOCKADE_LIMITS__INVOCATIONS_PER_MINUTE": "100000000",
        "STOCKADE_LIMITS__CONCURRENT_INVOCATIONS": "1000",
        # All load comes from one address: at the edge's per-address cap (64) a 64-connection run
        # plus a connection still closing from the previous run is answered 503 (the cap working).
        "STOCKADE_HTTP__MAX_CONNECTIONS_PER_ADDRESS": "128",
        "STOCKADE_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stockade.server",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--wskprops",
            str(data / "wskprops"),
            "--sandbox",
            sandbox,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(data / "server.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc)
    return proc, url, wait_auth(data), data


def wait_auth(data: Path) -> str:
    """The AUTH a starting server writes to ``data/wskprops`` on first start."""
    for _ in range(200):
        if (data / "wskprops").exists():
            break
        time.sleep(0.05)
    props = dict(line.split("=", 1) for line in (data / "wskprops").read_text().splitlines() if "=" in line)
    return props["AUTH"]


def start_baseline() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "baseline_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=Path(__file__).parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc)
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def latencies_ms(call: Callable[[], None], n: int, warmup: int = 50) -> list[float]:
    for _ in range(warmup):
        call()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.3f} ms, p99 {pct(values, 0.99):.3f} ms"
