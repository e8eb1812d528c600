"""The HTTP edge: server candidates on framing and slow-client probes, and on throughput (wrk).

Part 1 serves benchmarks/baseline_app.py on each candidate (edge_server.py) and sends the raw
probes below: ambiguous framing must be refused (4xx) with the connection closed, oversized
heads refused, a silent connection closed within 12 s. Part 2 measures requests/s and p50 with
wrk on the same app. Part 3 measures Stockade itself (a blocking invoke over the in-process
runner: the edge, auth, services and the store, no sandbox) before the change (uvicorn's h11,
how the starting commit served) and after (the hardened protocol), as ratios to the baseline
app on h11. BENCH_WRK_S sets each wrk run's seconds (default 5), BENCH_SLOW=0 skips the
12-second slow-client probe.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge_server import CANDIDATES

from common import free_port, stop, wait_auth, wait_http

WRK_S = int(os.environ.get("BENCH_WRK_S", "5"))
SLOW = os.environ.get("BENCH_SLOW", "1") != "0"
HERE = Path(__file__).parent
NEEDS = {"granian": "granian", "hypercorn": "hypercorn", "httptools-uvloop": "uvloop", "hardened-uvloop": "uvloop"}

SMUGGLE_BODY = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
PROBES: dict[str, bytes] = {
    "cl+te": b"POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
    % len(SMUGGLE_BODY)
    + SMUGGLE_BODY,
    "duplicate cl": b"POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x",
    "equal duplicate cl": b"POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    "list cl": b"POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}",
    "bad chunk size": b"POST /invoke HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "overflowing chunk": b"POST /invoke HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"FFFFFFFFFFFFFFFFF2\r\n{}\r\n0\r\n\r\n",
    "te chunked twice": b"POST /invoke HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "obs-fold": b"POST /invoke HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\n{}",
    "bare lf": b"POST /invoke HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}",
    "http/0.9": b"GET /invoke\r\n\r\n",
    "16 kB header": b"POST /invoke HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 16384 + b"\r\nContent-Length: 2\r\n\r\n{}",
    "500 headers": b"POST /invoke HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-H%d: v\r\n" % i for i in range(500))
    + b"Content-Length: 2\r\n\r\n{}",
    "20 kB target": b"POST /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
}


def _installed(candidate: str) -> bool:
    need = NEEDS.get(candidate)
    return need is None or importlib.util.find_spec(need) is not None


def _serve(app: str, candidate: str, data: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [sys.executable, "edge_server.py", app, candidate, str(port)] + ([str(data)] if data else [])
    proc = subprocess.Popen(
        args, cwd=HERE, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc)
    return proc, url


def _exchange(port: int, data: bytes, timeout_s: float = 3) -> tuple[list[int], bool]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.sendall(data)
        except OSError:
            return [], True
        chunks, closed = [], False
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            closed = True
        except TimeoutError:
            pass
        except ConnectionResetError:
            closed = True
    out = b"".join(chunks)
    return [int(s) for s in re.findall(rb"HTTP/1\.[01] (\d{3})", out)], closed


def probe(url: str) -> tuple[int, int, list[str]]:
    """Probes passed, probes run, and the names of the failures."""
    port = int(url.rsplit(":", 1)[1])
    failed = []
    for name, data in PROBES.items():
        statuses, closed = _exchange(port, data)
        # Refused: one 4xx/5xx answer (or none) and a closed connection; never a served request.
        if not (closed and all(s >= 400 for s in statuses) and len(statuses) <= 1):
            failed.append(name)
    total = len(PROBES)
    if SLOW:
        total += 1
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.settimeout(12)
            sock.sendall(b"POST /invoke HTTP/1.1\r\nHost: x\r\n")
            try:
                closed = sock.recv(65536) is not None
                while sock.recv(65536):
                    pass
            except TimeoutError:
                closed = False
            except ConnectionResetError:
                closed = True
        if not closed:
            failed.append("slow head (12 s)")
    return total - len(failed), total, failed


def wrk(url: str, path: str, body: str, headers: dict[str, str]) -> tuple[float, float]:
    """Requests per second and p50 latency (ms) of POST ``path``."""
    script = Path(tempfile.mkdtemp(prefix="stockade-wrk-")) / "post.lua"
    # JSON string literals are valid Lua string literals (ASCII, backslash escapes).
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines += [
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}"
        for k, v in {"Content-Type": "application/json", **headers}.items()
    ]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{WRK_S}s", "--latency", "-s", str(script), url + path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    if errors is not None:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    match = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert match is not None, out
    p50 = float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
    return rps, p50


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package wrk; scripts/install adds it)")
    print(f"-- candidates on baseline_app.py (probes: {len(PROBES)} framing/size{' + 1 slow head' if SLOW else ''})")
    base_rps = base_p50 = 0.0
    for candidate in CANDIDATES:
        if not _installed(candidate):
            print(f"{candidate:18s} skipped ({NEEDS[candidate]} not installed)")
            continue
        proc, url = _serve("baseline", candidate)
        try:
            passed, total, failed = probe(url)
            rps, p50 = wrk(url, "/invoke", '{"name":"x"}', {})
        finally:
            stop(proc)
        if candidate == "h11":
            base_rps, base_p50 = rps, p50
        print(
            f"{candidate:18s} probes {passed:2d}/{total}  {rps:9.0f} req/s  p50 {p50:7.3f} ms"
            f"  (x{rps / base_rps:.2f} req/s, x{p50 / base_p50:.2f} p50 vs h11)"
            + (f"  failed: {', '.join(failed)}" if failed else "")
        )
    print("-- Stockade blocking invoke (in-process runner), ratios to baseline_app.py on h11")
    for label, candidate in (("this code on h11", "h11"), ("hardened (served)", "hardened")):
        data = Path(tempfile.mkdtemp(prefix="stockade-bench-"))
        proc, url = _serve("stockade", candidate, data)
        try:
            auth = wait_auth(data)
            import base64

            header = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
            import httpx

            code = {"exec": {"kind": "python:3", "code": "def main(a):\n    return {'greeting': 'hello'}\n"}}
            httpx.put(url + "/api/v1/namespaces/_/actions/echo", json=code, headers=header).raise_for_status()
            time.sleep(0.5)
            rps, p50 = wrk(url, "/api/v1/namespaces/_/actions/echo?blocking=true&result=true", '{"name":"x"}', header)
        finally:
            stop(proc)
            shutil.rmtree(data, ignore_errors=True)
        print(
            f"{label:18s} {rps:9.0f} req/s  p50 {p50:7.3f} ms  = x{rps / base_rps:.3f} of baseline req/s,"
            f" x{p50 / base_p50:.2f} of baseline p50"
        )


if __name__ == "__main__":
    main()
