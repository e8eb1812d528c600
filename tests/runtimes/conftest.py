"""A harness that drives a runner process directly over a socketpair, as the invoker would."""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNTIMES = Path(__file__).resolve().parents[2] / "src" / "stockade" / "runtimes"
PYTHON_RUNNER = RUNTIMES / "python" / "runner.py"
NODE_RUNNER = RUNTIMES / "nodejs" / "runner.js"
SENTINEL = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
NODE = shutil.which("node")


class RunnerProcess:
    """One runner child with blocking helpers: request/reply frames and logs up to the sentinel."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        parent, child = socket.socketpair()
        self.proc = subprocess.Popen(
            [*argv, str(child.fileno())],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
            start_new_session=True,
        )
        child.close()
        parent.settimeout(20)
        self.sock = parent
        self.code_dir = cwd
        self._pending = {"stdout": b"", "stderr": b""}

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        self.send_raw(struct.pack(">I", len(body)) + body)

    def _recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("runner closed the control socket")
            data += chunk
        return data

    def receive(self) -> dict:
        (length,) = struct.unpack(">I", self._recv_exact(4))
        return json.loads(self._recv_exact(length))

    def request(self, message: dict) -> dict:
        self.send(message)
        return self.receive()

    def init(self, main: str = "main", env: dict | None = None, binary: bool = False) -> dict:
        return self.request(
            {"op": "init", "code_dir": str(self.code_dir), "main": main, "binary": binary, "env": env or {}}
        )

    def run(self, value: dict | None = None, env: dict | None = None, cpu_ms: int = 10_000) -> dict:
        return self.request(
            {
                "op": "run",
                "value": value if value is not None else {},
                "env": env or {},
                "deadline_ms": int(time.time() * 1000) + 60_000,
                "cpu_ms": cpu_ms,
            }
        )

    def read_until_sentinel(self, name: str, timeout_s: float = 10.0) -> list[str]:
        """Lines of one stream up to its next sentinel (which is stripped); raises on timeout."""
        stream = self.proc.stdout if name == "stdout" else self.proc.stderr
        assert stream is not None
        fd = stream.fileno()
        deadline = time.monotonic() + timeout_s
        buf = self._pending[name]
        while SENTINEL not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no sentinel on {name}; got {buf!r}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise EOFError(f"{name} closed before a sentinel; got {buf!r}")
                buf += chunk
        index = buf.index(SENTINEL)
        head, rest = buf[:index], buf[index + len(SENTINEL) :]
        self._pending[name] = rest[1:] if rest.startswith(b"\n") else rest
        return head.decode().splitlines()

    def logs(self) -> tuple[list[str], list[str]]:
        return self.read_until_sentinel("stdout"), self.read_until_sentinel("stderr")

    def close(self) -> int:
        self.sock.close()
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    path = tmp_path / "code"
    path.mkdir()
    return path


@pytest.fixture
def start_runner(code_dir: Path) -> Iterator:
    """start_runner("python" | "nodejs") → a RunnerProcess serving ``code_dir``."""
    started: list[RunnerProcess] = []

    def start(family: str) -> RunnerProcess:
        if family == "python":
            argv = [sys.executable, "-I", "-S", "-B", str(PYTHON_RUNNER)]
        else:
            if NODE is None:
                pytest.skip("node is not installed")
            argv = [NODE, str(NODE_RUNNER)]
        runner = RunnerProcess(argv, code_dir)
        started.append(runner)
        return runner

    yield start
    for runner in started:
        if runner.proc.poll() is None:
            runner.proc.kill()
        runner.close()
