"""Reliability harness (``make reliability``): faults against a real ``stockade up`` on loopback.

Scenarios, each bounded in time:
- crash: mixed traffic (non-blocking and blocking invokes, a stream of entity writes), ``kill -9`` of the
  server's process group at a random moment, restart; then every acknowledged activation must
  have exactly one terminal record and every acknowledged change its entity and audit entry;
- burst: many concurrent invokes at once; no 5xx, every accepted one recorded;
- full disk (root only): the data directory on a small tmpfs, filled; writes answer 507,
  reads and invokes of existing actions keep working, and everything recovers when space returns;
- limits: a namespace driven at twice its per-minute limit for a minute; accepted count
  against the limit, and a Retry-After on every 429.

Prints one line per figure (``figure: value``). ``--fast`` runs the subset ``make test`` runs
(tests/reliability/test_reliability.py). Loopback only; every process it starts is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SLEEPY = "import time\ndef main(args):\n    time.sleep(args.get('ms', 0) / 1000)\n    return {'ok': True, 'n': args.get('n')}\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One ``stockade up`` in its own process group (so kill -9 takes its sandboxes too)."""

    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None
    auth: tuple[str, str] = ("", "")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> None:
        sandbox = os.environ.get("STOCKADE_TEST_E2E_SANDBOX", "linux")
        env = {**os.environ, "STOCKADE_LOG_LEVEL": "warning", **self.env}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stockade.server",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    "--wskprops",
                    str(self.data_dir / "wskprops"),
                    "--sandbox",
                    sandbox,
                    "--log-format",
                    "json",
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stockade up exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200 and (self.data_dir / "wskprops").exists():
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            self.kill()
            raise RuntimeError(f"stockade up did not answer:\n{self.log()[-3000:]}")
        props = dict(
            line.split("=", 1) for line in (self.data_dir / "wskprops").read_text().splitlines() if "=" in line
        )
        uuid, key = props["AUTH"].split(":", 1)
        self.auth = (uuid, key)

    def kill(self) -> None:
        """kill -9 the server and everything it started."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """A clean stop (SIGTERM), then kill -9 if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        with suppress(ProcessLookupError):  # sandboxes left in the group, if any
            os.killpg(self.proc.pid, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=self.auth, timeout=timeout)

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.data_dir / 'stockade.db'}?mode=ro", uri=True)


@contextmanager
def running(data_dir: Path, log_path: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    server = Server(data_dir, log_path, env or {})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def put_action(server: Server, name: str, code: str = SLEEPY) -> None:
    with server.client() as c:
        r = c.put(
            f"/api/v1/namespaces/_/actions/{name}?overwrite=true", json={"exec": {"kind": "python:3", "code": code}}
        )
        r.raise_for_status()


def unhandled_errors(server: Server) -> list[str]:
    """Log lines of unhandled errors (a 500 is a bug)."""
    return [line for line in server.log().splitlines() if "unhandled_error" in line or "Traceback" in line]


# -- crash ---------------------------------------------------------------------------------------


@dataclass
class CrashRound:
    accepted: set[str] = field(default_factory=set)  # activation ids acknowledged (202 or 200)
    answered_blocking: int = 0
    dropped: int = 0  # calls whose connection the kill dropped
    refused: int = 0
    changes: list[tuple[str, str]] = field(default_factory=list)  # (action name, transaction id) acknowledged


async def _traffic(server: Server, round_: CrashRound, non_blocking: int, blocking: int, writes: int, tag: str) -> None:
    async with httpx.AsyncClient(base_url=server.url, auth=server.auth, timeout=30) as client:

        async def invoke(i: int, is_blocking: bool) -> None:
            await asyncio.sleep(random.uniform(0, 0.3))
            query = "?blocking=true" if is_blocking else ""
            try:
                r = await client.post(f"/api/v1/namespaces/_/actions/sleepy{query}", json={"ms": 1500, "n": i})
            except httpx.HTTPError:
                round_.dropped += 1
                return
            if r.status_code in (200, 202):
                round_.accepted.add(r.json()["activationId"])
                round_.answered_blocking += int(is_blocking)
            else:
                round_.refused += 1

        async def writer(i: int) -> None:
            # Changes keep coming until the kill: the last ones are acknowledged moments before it.
            for j in range(300):
                tid = f"rel-{tag}-{i}-{j}"
                name = f"w-{tag}-{i}-{j}"
                try:
                    r = await client.put(
                        f"/api/v1/namespaces/_/actions/{name}",
                        json={"exec": {"kind": "python:3", "code": SLEEPY}},
                        headers={"X-Request-ID": tid},
                    )
                except httpx.HTTPError:
                    round_.dropped += 1
                    return
                if r.status_code == 200:
                    round_.changes.append((name, tid))

        await asyncio.gather(
            *(invoke(i, False) for i in range(non_blocking)),
            *(invoke(i, True) for i in range(blocking)),
            *(writer(i) for i in range(writes)),
            return_exceptions=True,
        )


def crash_round(server: Server, non_blocking: int, blocking: int, writes: int, tag: str) -> CrashRound:
    """Traffic, then kill -9 at a random moment while it is in flight; the server is left dead."""
    round_ = CrashRound()
    kill_after = random.uniform(0.6, 2.5)

    async def main() -> None:
        traffic = asyncio.create_task(_traffic(server, round_, non_blocking, blocking, writes, tag))
        await asyncio.sleep(kill_after)
        server.kill()
        await traffic

    asyncio.run(main())
    return round_


def wait_settled(server: Server, timeout_s: float = 60) -> int:
    """Wait until no activation is pending; how many still are at the deadline."""
    deadline = time.monotonic() + timeout_s
    left = -1
    while time.monotonic() < deadline:
        try:
            with server.db() as db:
                left = int(db.execute("SELECT COUNT(*) FROM activations_pending").fetchone()[0])
        except sqlite3.OperationalError:  # a build without the journal (comparing against today)
            time.sleep(2)
            return 0
        if left == 0:
            return 0
        time.sleep(0.2)
    return left


@dataclass
class Reconciled:
    accepted: int
    lost: int
    duplicated: int
    changes: int
    changes_lost: int
    audit_missing: int


def reconcile(server: Server, rounds: list[CrashRound]) -> Reconciled:
    accepted = set().union(*(r.accepted for r in rounds))
    changes = [c for r in rounds for c in r.changes]
    entries: list[dict[str, object]] = []
    with server.client() as c:
        since = 0
        while True:  # each read chains the outbox first
            page = c.get(f"/api/v1/namespaces/_/audit?limit=1000&since={since}").json()
            entries += page
            if len(page) < 1000:
                break
            since = int(page[-1]["seq"])
    audited = {
        str(e["details"].get("transactionId"))
        for e in entries
        if e.get("outcome") == "200" and isinstance(e.get("details"), dict)
    }
    with server.db() as db:
        counts = dict(db.execute("SELECT activation_id, COUNT(*) FROM activations GROUP BY activation_id").fetchall())
        names = {row[0] for row in db.execute("SELECT name FROM entities WHERE collection = 'actions'")}
    lost = sum(1 for i in accepted if counts.get(i, 0) == 0)
    duplicated = sum(1 for i in accepted if counts.get(i, 0) > 1)
    return Reconciled(
        accepted=len(accepted),
        lost=lost,
        duplicated=duplicated,
        changes=len(changes),
        changes_lost=sum(1 for name, _tid in changes if name not in names),
        audit_missing=sum(1 for _name, tid in changes if tid not in audited),
    )


def scenario_crash(work: Path, kills: int, non_blocking: int, blocking: int, writes: int) -> dict[str, object]:
    data = work / "crash"
    data.mkdir()
    env = {"STOCKADE_LIMITS__INVOCATIONS_PER_MINUTE": "100000", "STOCKADE_LIMITS__CONCURRENT_INVOCATIONS": "100000"}
    server = Server(data, work / "crash.log", env)
    server.start()
    rounds: list[CrashRound] = []
    try:
        put_action(server, "sleepy")
        for k in range(kills):
            rounds.append(crash_round(server, non_blocking, blocking, writes, f"k{k}"))
            server.start()  # recovery runs at start-up
        left = wait_settled(server)
        result = reconcile(server, rounds)
        errors = unhandled_errors(server)
    finally:
        server.stop()
    return {
        "crash.kills": kills,
        "crash.invokes_sent": kills * (non_blocking + blocking),
        "crash.activations_accepted": result.accepted,
        "crash.activations_lost": result.lost,
        "crash.activations_duplicated": result.duplicated,
        "crash.activations_still_pending": left,
        "crash.calls_dropped_by_kill": sum(r.dropped for r in rounds),
        "crash.calls_refused": sum(r.refused for r in rounds),
        "crash.blocking_answered_before_kill": sum(r.answered_blocking for r in rounds),
        "crash.changes_acknowledged": result.changes,
        "crash.changes_lost": result.changes_lost,
        "crash.audit_entries_missing": result.audit_missing,
        "crash.unhandled_errors_logged": len(errors),
    }


# -- burst ---------------------------------------------------------------------------------------


def scenario_burst(work: Path, n: int) -> dict[str, object]:
    data = work / "burst"
    data.mkdir()
    env = {
        "STOCKADE_LIMITS__INVOCATIONS_PER_MINUTE": "1000000",
        "STOCKADE_LIMITS__CONCURRENT_INVOCATIONS": "100000",
        # The burst comes from one load generator with 200 connections: above the edge's default
        # per-address cap (64), which would refuse the extra connections rather than test the platform.
        "STOCKADE_HTTP__MAX_CONNECTIONS_PER_ADDRESS": "256",
    }
    statuses: dict[int, int] = {}
    ids: set[str] = set()
    with running(data, work / "burst.log", env) as server:
        put_action(server, "sleepy")

        async def main() -> None:
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(base_url=server.url, auth=server.auth, timeout=120, limits=limits) as c:

                async def one(i: int) -> None:
                    r = await c.post("/api/v1/namespaces/_/actions/sleepy", json={"ms": 0, "n": i})
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code == 202:
                        ids.add(r.json()["activationId"])

                t0 = time.perf_counter()
                await asyncio.gather(*(one(i) for i in range(n)))
                statuses[-1] = int((time.perf_counter() - t0) * 1000)

        asyncio.run(main())
        elapsed_ms = statuses.pop(-1)
        left = wait_settled(server, 300)
        with server.db() as db:
            recorded = sum(1 for (i,) in db.execute("SELECT activation_id FROM activations").fetchall() if i in ids)
        errors = unhandled_errors(server)
    return {
        "burst.invokes": n,
        "burst.accepted_202": statuses.get(202, 0),
        "burst.server_errors_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "burst.accept_ms_total": elapsed_ms,
        "burst.recorded_of_accepted": f"{recorded}/{len(ids)}",
        "burst.still_pending": left,
        "burst.unhandled_errors_logged": len(errors),
    }


# -- full disk -----------------------------------------------------------------------------------


def _fill(path: Path) -> None:
    """Write zeros until the filesystem is full (unbuffered, down to single blocks)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 4096, 512):
            chunk = b"\0" * size
            try:
                while True:
                    os.write(fd, chunk)
            except OSError:
                continue
    finally:
        os.close(fd)


def scenario_full_disk(work: Path, size_mb: int = 48) -> dict[str, object]:
    if os.geteuid() != 0:
        return {"full_disk.skipped": "needs root to mount a small tmpfs"}
    mount = work / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(mount)], check=True)
    figures: dict[str, object] = {}
    try:
        data = mount / "data"
        with running(data, work / "full.log") as server:
            put_action(server, "sleepy")
            with server.client() as c:
                first = c.post("/api/v1/namespaces/_/actions/sleepy?blocking=true", json={"n": 0})
                figures["full_disk.invoke_before_fill"] = first.status_code
                _fill(mount / "filler")
                r = c.put("/api/v1/namespaces/_/actions/new1", json={"exec": {"kind": "python:3", "code": SLEEPY}})
                figures["full_disk.write_status"] = r.status_code
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                figures["full_disk.write_error_shape_ok"] = set(body) == {"error", "code"}
                figures["full_disk.read_status"] = c.get("/api/v1/namespaces/_/actions/sleepy").status_code
                figures["full_disk.list_status"] = c.get("/api/v1/namespaces/_/actions").status_code
                b = c.post("/api/v1/namespaces/_/actions/sleepy?blocking=true", json={"n": 1})
                figures["full_disk.blocking_invoke_status"] = b.status_code
                blocking_id = b.json().get("activationId") if b.status_code == 200 else None
                figures["full_disk.non_blocking_invoke_status"] = c.post(
                    "/api/v1/namespaces/_/actions/sleepy", json={"n": 2}
                ).status_code
                (mount / "filler").unlink()
                recovered = 0
                for _ in range(100):
                    recovered = c.put(
                        "/api/v1/namespaces/_/actions/new2", json={"exec": {"kind": "python:3", "code": SLEEPY}}
                    ).status_code
                    if recovered == 200:
                        break
                    time.sleep(0.1)
                figures["full_disk.write_after_space_returns"] = recovered
                figures["full_disk.non_blocking_after_space_returns"] = c.post(
                    "/api/v1/namespaces/_/actions/sleepy", json={"n": 3}
                ).status_code
                if blocking_id is not None:
                    stored = 0
                    for _ in range(100):
                        with server.db() as db:
                            stored = db.execute(
                                "SELECT COUNT(*) FROM activations WHERE activation_id = ?", (blocking_id,)
                            ).fetchone()[0]
                        if stored:
                            break
                        time.sleep(0.1)
                    figures["full_disk.record_held_during_full_disk_committed"] = bool(stored)
            errors = unhandled_errors(server)
            figures["full_disk.unhandled_errors_logged"] = len(errors)
            if errors and os.environ.get("RELIABILITY_VERBOSE"):
                figures["full_disk.first_unhandled_error"] = errors[0][:2000]
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    return figures


# -- limits --------------------------------------------------------------------------------------


def scenario_limits(work: Path, limit: int, seconds: float) -> dict[str, object]:
    data = work / "limits"
    data.mkdir()
    env = {
        "STOCKADE_LIMITS__INVOCATIONS_PER_MINUTE": str(limit),
        "STOCKADE_LIMITS__CONCURRENT_INVOCATIONS": "100000",
    }
    accepted: list[float] = []
    refused = 0
    without_retry_after = 0
    with running(data, work / "limits.log", env) as server:
        put_action(server, "sleepy")
        gap_s = 60 / (2 * limit)  # twice the limit

        async def main() -> None:
            nonlocal refused, without_retry_after
            async with httpx.AsyncClient(base_url=server.url, auth=server.auth, timeout=30) as c:
                t0 = time.monotonic()
                tasks = []

                async def one() -> None:
                    nonlocal refused, without_retry_after
                    r = await c.post("/api/v1/namespaces/_/actions/sleepy", json={"ms": 0})
                    if r.status_code == 202:
                        accepted.append(time.monotonic() - t0)
                    elif r.status_code == 429:
                        refused += 1
                        without_retry_after += "retry-after" not in r.headers

                i = 0
                while time.monotonic() - t0 < seconds:
                    tasks.append(asyncio.create_task(one()))
                    i += 1
                    await asyncio.sleep(max(0.0, t0 + i * gap_s - time.monotonic()))
                await asyncio.gather(*tasks)

        asyncio.run(main())
    accepted.sort()
    best, lo = 0, 0
    for hi, t in enumerate(accepted):
        while accepted[lo] <= t - 60:
            lo += 1
        best = max(best, hi - lo + 1)
    return {
        "limits.limit_per_minute": limit,
        "limits.driven_at": f"2x for {seconds:.0f} s",
        "limits.accepted_max_in_any_60s": best,
        "limits.accuracy": f"{best / limit:.3f} of the limit",
        "limits.refused_429": refused,
        "limits.429_without_retry_after": without_retry_after,
    }


def run(fast: bool, only: list[str] | None = None) -> dict[str, object]:
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="stockade-reliability-") as tmp:
        work = Path(tmp)
        plan = {
            "crash": lambda: scenario_crash(work, 1 if fast else 3, 30 if fast else 100, 6 if fast else 20, 4),
            "burst": lambda: scenario_burst(work, 200 if fast else 2000),
            "full_disk": lambda: scenario_full_disk(work),
            "limits": lambda: scenario_limits(work, 600 if fast else 120, 15 if fast else 65),
        }
        for name, step in plan.items():
            if only and name not in only:
                continue
            t0 = time.monotonic()
            figures.update(step())
            figures[f"{name}.seconds"] = round(time.monotonic() - t0, 1)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="the subset make test runs")
    parser.add_argument("--only", action="append", help="crash, burst, full_disk or limits (repeatable)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    args = parser.parse_args()
    figures = run(args.fast, args.only)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
