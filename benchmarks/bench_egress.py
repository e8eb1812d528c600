"""Egress proxy: added latency per HTTP request, as a ratio to a direct request, in the same run.

A test server runs on a test host inside a network namespace this benchmark creates (veth pair on
10.213.x.0/30, torn down after; as root with ``ip``), or on loopback otherwise. Each sample is one
HTTP/1.1 GET on a fresh connection (the proxy serves one request per connection), interleaved:

* direct:      host -> test server
* proxy:       host -> the EgressProxy's unix socket (absolute-form GET) -> test server
* sandboxed:   inside a Linux sandbox, the action -> 127.0.0.1:3128 (the runner's forwarder) ->
               unix socket -> proxy -> test server; timed inside the action (if sandboxes run here)

Target (issue 7 via the sandbox design): the proxy adds about 1 ms per request or less.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import structlog

from stockade.invoker.egress_policy import parse_egress
from stockade.invoker.egress_proxy import EgressProxy
from stockade.sandbox.harness import ActionSandbox, write_action
from stockade.sandbox.linux import LinuxSandboxBackend
from stockade.sandbox.spec import SandboxSpec

from common import pct

N = int(os.environ.get("BENCH_N", "2000"))
N_SANDBOX = int(os.environ.get("BENCH_N_SANDBOX", "1000"))
NAME = "testhost.bench.test"
PORT = 8080

SERVER = """
import socket, sys, threading
RESPONSE = b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\nConnection: close\\r\\n\\r\\nhello"
def serve(conn):
    with conn:
        data = b""
        while b"\\r\\n\\r\\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        conn.sendall(RESPONSE)
listener = socket.create_server((sys.argv[1], int(sys.argv[2])), backlog=512)
print("ready", flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

# One GET per fresh connection to the forwarder, timed inside the sandbox.
SANDBOX_CLIENT = """
import socket, time
def main(args):
    request = ("GET http://%s:%d/ HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % (args["host"], args["port"], args["host"])).encode()
    samples = []
    for i in range(args["n"] + 50):
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", 3128)) as s:
            s.sendall(request)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        if i >= 50:
            samples.append((time.perf_counter() - t0) * 1000)
        assert data.endswith(b"hello"), data[:200]
    return {"samples": samples}
"""


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


class TestHost:
    """The server, in a fresh network namespace when possible, else on loopback."""

    def __init__(self) -> None:
        self.namespace = ""
        self.host_if = ""
        self.where = "loopback"
        self.address = "127.0.0.1"
        self.port = PORT
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-c", SERVER]
        if os.geteuid() == 0 and shutil.which("ip"):
            tag = secrets.token_hex(3)
            self.namespace, self.host_if, peer = f"stk-bench-{tag}", f"stkb{tag}", f"stkc{tag}"
            n = secrets.randbelow(256)
            gateway, self.address = f"10.213.{n}.1", f"10.213.{n}.2"
            ip("netns", "add", self.namespace)
            ip("link", "add", self.host_if, "type", "veth", "peer", "name", peer)
            ip("link", "set", peer, "netns", self.namespace)
            ip("addr", "add", f"{gateway}/30", "dev", self.host_if)
            ip("link", "set", self.host_if, "up")
            ip("-n", self.namespace, "addr", "add", f"{self.address}/30", "dev", peer)
            ip("-n", self.namespace, "link", "set", peer, "up")
            argv = ["ip", "netns", "exec", self.namespace, *argv]
            self.where = f"network namespace {self.namespace} over a veth pair"
        else:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
        self.process = subprocess.Popen(
            [*argv, self.address, str(self.port)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("test server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            if self.process.stdout is not None:
                self.process.stdout.close()
        if self.namespace:
            ip("netns", "del", self.namespace, check=False)
            ip("link", "del", self.host_if, check=False)


def get(family: int, address: Any, request: bytes) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.connect(address)
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    if not data.endswith(b"hello"):
        raise RuntimeError(f"unexpected answer: {data[:200]!r}")


def line(label: str, values: list[float]) -> str:
    return f"{label}: p50 {statistics.median(values):.3f} ms, p99 {pct(values, 0.99):.3f} ms (n={len(values)})"


async def sandboxed(proxy: EgressProxy, grants: list[str], host: TestHost) -> list[float] | str:
    backend = LinuxSandboxBackend(prepared_slots=0)
    reason = backend.facts().unavailable_reason
    if reason:
        return f"sandboxes unavailable here: {reason}"
    lease = await proxy.open(parse_egress(grants, proxy.data), namespace="bench", action="/bench/client")
    code = write_action(Path(tempfile.mkdtemp(prefix="stockade-bench-")) / "client", "python", SANDBOX_CLIENT)
    sandbox = await ActionSandbox.start(backend, SandboxSpec(family="python", code_dir=code, egress_socket=lease.path))
    try:
        reply = await sandbox.run({"host": NAME, "port": host.port, "n": N_SANDBOX}, timeout_s=600)
    finally:
        await sandbox.kill()
        await backend.close()
        await lease.close()
    if not reply.get("ok"):
        return f"sandboxed client failed: {reply}"
    samples: list[float] = reply["result"]["samples"]
    return samples


def main() -> None:
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    host = TestHost()
    host.start()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def resolve(name: str, port: int) -> list[Any]:
        return [ipaddress.ip_address(host.address)] if name == NAME else []

    try:
        proxy = EgressProxy(resolver=resolve)
        grants = [f"{NAME}:{host.port}", f"{host.address}/32:{host.port}"]
        lease = asyncio.run_coroutine_threadsafe(
            proxy.open(parse_egress(grants, proxy.data), namespace="bench", action="/bench/client"), loop
        ).result()
        direct_request = f"GET / HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n".encode()
        proxy_request = f"GET http://{NAME}:{host.port}/ HTTP/1.1\r\nHost: {NAME}\r\n\r\n".encode()
        direct: list[float] = []
        proxied: list[float] = []
        for i in range(N + 100):
            for samples, call in (
                (direct, lambda: get(socket.AF_INET, (host.address, host.port), direct_request)),
                (proxied, lambda: get(socket.AF_UNIX, str(lease.path), proxy_request)),
            ):
                t0 = time.perf_counter()
                call()
                if i >= 100:
                    samples.append((time.perf_counter() - t0) * 1000)
        inside = asyncio.run_coroutine_threadsafe(sandboxed(proxy, grants, host), loop).result()
        asyncio.run_coroutine_threadsafe(proxy.close(), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        host.stop()

    d50, p50 = statistics.median(direct), statistics.median(proxied)
    print(f"test server: {host.where}")
    print(line("GET, host -> test server, direct", direct))
    print(line("GET, host -> egress proxy unix socket -> test server", proxied))
    print(f"  proxy added latency: {p50 - d50:+.3f} ms per request at p50 (ratio {p50 / d50:.2f})")
    if isinstance(inside, str):
        print(f"GET from inside a sandbox: skipped ({inside})")
    else:
        s50 = statistics.median(inside)
        print(line("GET, sandboxed action -> forwarder 127.0.0.1:3128 -> proxy -> test server", inside))
        print(f"  sandbox path added latency: {s50 - d50:+.3f} ms per request at p50 (ratio {s50 / d50:.2f})")
    print("target: the proxy adds about 1 ms per request or less")


if __name__ == "__main__":
    main()
