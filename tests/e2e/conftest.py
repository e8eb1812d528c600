"""A real `stockade up` on loopback for end-to-end tests (one per test session)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


@dataclass(frozen=True)
class Server:
    url: str
    auth: str
    wskprops: Path
    data_dir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LOOPBACK_ADVISORIES = "http://127.0.0.1:9/osv"


def start_server(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Server]:
    port = _free_port()
    wskprops = data_dir / "wskprops"
    log_path = data_dir / "server.log"
    backend = os.environ.get("STOCKADE_TEST_E2E_SANDBOX", "linux")
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stockade.server",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--wskprops",
                str(wskprops),
                "--sandbox",
                backend,
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Tests reach nothing off this machine: advisory syncs go to a closed loopback port
            # unless a test names its own source.
            env={"STOCKADE_SCAN__ADVISORIES_URL": LOOPBACK_ADVISORIES, **os.environ},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"stockade up exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200 and wskprops.exists():
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError(f"stockade up did not answer within 60 s:\n{log_path.read_text()}")
    props = dict(line.split("=", 1) for line in wskprops.read_text().splitlines() if "=" in line)
    return proc, Server(url, props["AUTH"], wskprops, data_dir, log_path)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("stockade-e2e")
    proc, srv = start_server(data_dir)
    try:
        yield srv
    finally:
        stop_server(proc)
