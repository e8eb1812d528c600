"""A real scale-out cluster on loopback (scripts/cluster): PostgreSQL, NATS JetStream, controllers, invokers."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cluster"


@dataclass
class Cluster:
    dir: Path
    info: dict
    restarted: list = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.info["controllers"]]

    @property
    def auth(self) -> tuple[str, str]:
        props = dict(line.split("=", 1) for line in (self.dir / "wskprops").read_text().splitlines() if "=" in line)
        user, key = props["AUTH"].split(":", 1)
        return user, key

    def client(self, index: int, timeout: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.urls[index], auth=self.auth, timeout=timeout)

    def pid(self, name: str) -> int:
        return int((self.dir / f"{name}.pid").read_text())

    def kill(self, name: str) -> None:
        subprocess.run([str(SCRIPT), "--dir", str(self.dir), "kill", name], check=True, capture_output=True)

    def log(self, name: str) -> str:
        return (self.dir / f"{name}.log").read_text(errors="replace")

    def restart_controller(self, name: str) -> None:
        """What a supervisor does after a crash: start it again with the same settings."""
        index = int(name[1:])
        port = self.info["controllers"][index]
        with open(self.dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [
                    str(ROOT / ".venv" / "bin" / "python"),
                    "-m",
                    "stockade.roles.controller",
                    "--config",
                    self.info["settings"],
                    "--data-dir",
                    str(self.dir / name),
                    "--port",
                    str(port),
                    "--id",
                    name,
                    "--wskprops",
                    str(self.dir / "wskprops.restart"),
                    "--log-format",
                    "json",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.restarted.append(proc)
        (self.dir / f"{name}.pid").write_text(str(proc.pid))


def _start(tmp: Path, *extra: str) -> Cluster:
    sandbox = os.environ.get("STOCKADE_TEST_CLUSTER_SANDBOX", "insecure_process")
    result = subprocess.run(
        [str(SCRIPT), "--dir", str(tmp), "start", "--port", "0", "--sandbox", sandbox, *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        message = f"cluster did not start: {result.stderr[-2000:]}"
        if "services:" in result.stderr and os.environ.get("STOCKADE_TEST_REQUIRE_POSTGRES") != "1":
            pytest.skip(message)
        raise RuntimeError(message)
    return Cluster(tmp, json.loads((tmp / "cluster.json").read_text()))


def _stop(cluster: Cluster) -> None:
    for proc in cluster.restarted:
        proc.terminate()  # our own child: reaped here, so the stop below does not wait on a zombie
        proc.wait(30)
    stopped = subprocess.run(
        [str(SCRIPT), "--dir", str(cluster.dir), "stop"], capture_output=True, text=True, timeout=120
    )
    assert "did not stop" not in stopped.stderr, stopped.stderr  # SIGTERM drains and exits
    unhandled = _unhandled_errors(cluster.dir)
    assert not unhandled, "unhandled errors in the cluster's logs:\n" + "\n".join(unhandled)


def _unhandled_errors(directory: Path) -> list[str]:
    """Tracebacks and error entries in the controllers' and invokers' logs, security events aside.

    A security event (``security.*``, for example a forged run message refused) is logged at error
    level on purpose; anything else at error level, or a traceback, is a bug.
    """
    found: list[str] = []
    for log in sorted(directory.glob("[ci][0-9]*.log")):
        for line in log.read_text(errors="replace").splitlines():
            entry: dict = {}
            if line.startswith("{"):
                try:
                    entry = json.loads(line)
                except ValueError:
                    entry = {}
            level = str(entry.get("level", ""))
            event = str(entry.get("event", ""))
            if (
                "Traceback" in line
                or "encountered error" in line
                or (level in {"error", "critical"} and not event.startswith("security."))
            ):
                found.append(f"{log.name}: {line[:300]}")
    return found


@pytest.fixture
def start_cluster(tmp_path_factory) -> Iterator:
    started: list[Cluster] = []

    def start(*extra: str) -> Cluster:
        cluster = _start(tmp_path_factory.mktemp("cluster"), *extra)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        _stop(cluster)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    c = _start(tmp_path_factory.mktemp("cluster"), "--invocations-per-minute", "20")
    yield c
    _stop(c)
