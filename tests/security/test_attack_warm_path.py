"""Attacks on the warm path (issue 16) through a real `stockade up` on loopback with the Linux sandbox:
stem cells across tenants and versions, limits on a stem cell, one tenant's backlog against another,
clients that walk away from blocking invokes, and another process holding SQLite's write lock.

The server runs with a tiny pool (``invoker.max_sandboxes`` = 2) so that the pool, not the
machine, is what tenants compete for.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from e2e.conftest import Server, start_server, stop_server

pytestmark = pytest.mark.e2e

POOL = 2

# What an action can tell of the process it runs in: a token made when its module was loaded
# (same token = same sandbox), what it finds in /tmp and the environment, and what it leaves.
PY_TENANT = """
import os, secrets
TOKEN = secrets.token_hex(8)
def main(args):
    found = {'token': TOKEN, 'tmp': sorted(os.listdir('/tmp')), 'env': sorted(k for k in os.environ if k.startswith('LEFT'))}
    open('/tmp/left-' + args.get('who', 'x'), 'w').write('x')
    os.environ['LEFT_' + args.get('who', 'x')] = '1'
    return found
"""
JS_TENANT = """
const fs = require('fs');
const TOKEN = require('crypto').randomBytes(8).toString('hex');
function main(args) {
  const found = { token: TOKEN, tmp: fs.readdirSync('/tmp').sort(),
    env: Object.keys(process.env).filter((k) => k.startsWith('LEFT')).sort() };
  fs.writeFileSync('/tmp/left-' + (args.who || 'x'), 'x');
  process.env['LEFT_' + (args.who || 'x')] = '1';
  return found;
}
exports.main = main;
"""
TENANT_CODE = {"python:3": PY_TENANT, "nodejs:20": JS_TENANT}
SLEEPER = "import time\ndef main(a):\n    time.sleep(float(a.get('s', 1)))\n    return {'slept': a.get('s', 1)}\n"
ECHO = "def main(a):\n    return {'echo': a}\n"


def _namespace(server: Server, name: str) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "stockade.cli", "admin", "namespace-create", name],
        env={**os.environ, "STOCKADE_DATA_DIR": str(server.data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return made.stdout.split("AUTH=")[1].split()[0]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    data_dir = tmp_path_factory.mktemp("stockade-warm-attack")
    # A tiny pool; throttles out of the way (the SQLite test invokes as fast as it can).
    settings = {"STOCKADE_INVOKER__MAX_SANDBOXES": str(POOL), "STOCKADE_LIMITS__INVOCATIONS_PER_MINUTE": "1000000"}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        proc, server = start_server(data_dir)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        yield server, _namespace(server, "mallory")
    finally:
        stop_server(proc)
        # Nothing unhandled on the server side, whatever the attacks did.
        for marker in ("api.unhandled_error", "invoke.internal_error", "Task exception was never retrieved"):
            assert marker not in server.log(), server.log()[-4000:]


def _client(server: Server, token: str) -> httpx.Client:
    basic = base64.b64encode(token.encode()).decode()
    return httpx.Client(base_url=server.url + "/api/v1", headers={"Authorization": f"Basic {basic}"}, timeout=120)


def _put(client: httpx.Client, name: str, code: str, kind: str = "python:3", **limits: int) -> None:
    body: dict[str, Any] = {"exec": {"kind": kind, "code": code}}
    if limits:
        body["limits"] = limits
    r = client.put(f"/namespaces/_/actions/{name}?overwrite=true", json=body)
    assert r.status_code == 200, r.text


def _result(client: httpx.Client, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    r = client.post(f"/namespaces/_/actions/{name}?blocking=true", json=params or {})
    assert r.status_code in (200, 502), r.text
    response: dict[str, Any] = r.json()["response"]
    return response


def _until(predicate: Callable[[], bool], what: str, bound_s: float = 120) -> None:
    # Waiting for background work on a loaded host, not a timed assertion: a generous bound.
    deadline = time.monotonic() + bound_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize("kind", ["python:3", "nodejs:20"])
def test_no_sandbox_crosses_tenants_or_versions(platform: tuple[Server, str], kind: str) -> None:
    """Same action name in two namespaces, an update, a delete and re-create: each gets a sandbox of its own
    (a stem cell or not); nothing one left in /tmp or the environment reaches the other. Reuse within one
    (namespace, action, version) is the positive control."""
    server, mallory = platform
    name = "tenant" + kind.split(":")[0]
    with _client(server, server.auth) as guest, _client(server, mallory) as evil:
        _put(guest, name, TENANT_CODE[kind], kind)
        _put(evil, name, TENANT_CODE[kind], kind)
        first = _result(guest, name, {"who": "guest"})
        assert first["success"], first
        assert first["result"]["tmp"] == []
        again = _result(guest, name, {"who": "guest"})["result"]
        assert again["token"] == first["result"]["token"]  # warm reuse: the same sandbox
        assert again["tmp"] == ["left-guest"]
        other = _result(evil, name, {"who": "mallory"})["result"]
        assert other["token"] != first["result"]["token"]
        assert other["tmp"] == []
        assert other["env"] == []
        # An update is a new version: a new sandbox, nothing of the old one.
        _put(
            guest,
            name,
            TENANT_CODE[kind] + "\n// v2\n" if kind.startswith("nodejs") else TENANT_CODE[kind] + "\n# v2\n",
            kind,
        )
        updated = _result(guest, name, {"who": "v2"})["result"]
        assert updated["token"] not in (first["result"]["token"], other["token"])
        assert updated["tmp"] == []
        assert updated["env"] == []
        # Deleted and created again with the same code (same version number): a new sandbox too.
        assert guest.delete(f"/namespaces/_/actions/{name}").status_code == 200
        _put(guest, name, TENANT_CODE[kind], kind)
        recreated = _result(guest, name, {"who": "again"})["result"]
        assert recreated["token"] not in (first["result"]["token"], updated["token"], other["token"])
        assert recreated["tmp"] == []


@pytest.mark.parametrize("kind", ["python:3", "nodejs:20"])
def test_limits_hold_on_the_warm_path(platform: tuple[Server, str], kind: str) -> None:
    """A 1 s action that loops times out; a 128 MB action that allocates 200 MB fails; then the same
    namespace still runs actions (the sandboxes were ended, no slot leaked)."""
    server, _ = platform
    if kind.startswith("nodejs"):
        spin = "function main() { for (;;) {} }\nexports.main = main;\n"
        hog = (
            "function main() { const a = []; for (let i = 0; i < 200; i++) a.push(Buffer.alloc(1 << 20, 1));"
            " return { n: a.length }; }\nexports.main = main;\n"
        )
    else:
        spin = "def main(a):\n    while True:\n        pass\n"
        hog = "def main(a):\n    b = bytearray(200 << 20)\n    b[::4096] = b'x' * len(b[::4096])\n    return {'n': len(b)}\n"
    suffix = kind.split(":")[0]
    with _client(server, server.auth) as guest:
        _put(guest, "spin" + suffix, spin, kind, timeout=1000)
        _put(guest, "hog" + suffix, hog, kind, memory=128)
        spun = _result(guest, "spin" + suffix)
        assert not spun["success"], spun
        assert spun["status"] in ("action developer error", "application error"), spun
        hogged = _result(guest, "hog" + suffix)
        if os.geteuid() == 0:
            assert not hogged["success"], hogged
        _put(guest, "echo" + suffix, ECHO)
        assert _result(guest, "echo" + suffix, {"x": 1})["result"] == {"echo": {"x": 1}}


def _activation(client: httpx.Client, activation_id: str) -> dict[str, Any] | None:
    r = client.get(f"/namespaces/_/activations/{activation_id}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    record: dict[str, Any] = r.json()
    return record if record.get("end") else None


def test_one_tenants_backlog_does_not_starve_another(platform: tuple[Server, str]) -> None:
    """Mallory fills the pool with slow runs of one action and keeps a backlog of it; the guest's run,
    queued behind that backlog, gets the next free sandbox, not the one after Mallory's whole queue."""
    server, mallory = platform
    with _client(server, server.auth) as guest, _client(server, mallory) as evil:
        _put(evil, "slow", SLEEPER)
        _put(guest, "quick", ECHO)
        assert _result(guest, "quick")["success"]
        backlog = 4 * POOL
        ids = []
        for _ in range(backlog):
            r = evil.post("/namespaces/_/actions/slow", json={"s": 1.5})
            assert r.status_code == 202, r.text
            ids.append(r.json()["activationId"])
        # Let the pool fill with Mallory's runs before the guest's run arrives.
        _until(lambda: any(_activation(evil, i) for i in ids[:1]) or _pool(server)["busy"] >= POOL, "a full pool")
        r = guest.post("/namespaces/_/actions/quick?blocking=true", json={"x": 1})
        assert r.status_code == 200, r.text
        quick = r.json()
        _until(lambda: all(_activation(evil, i) for i in ids), "Mallory's backlog")
        starts = sorted(_activation(evil, i)["start"] for i in ids)  # type: ignore[index]
    # Fair: at most one round of the pool's sandboxes of Mallory's started after the guest's run
    # arrived and before it started. Starved: the guest waited for the whole backlog.
    after_guest = [s for s in starts if s > quick["start"]]
    assert len(after_guest) >= backlog - 2 * POOL, (quick["start"], starts)


def _pool(server: Server) -> dict[str, float]:
    r = httpx.get(server.url + "/metrics", auth=None, headers=_basic(server.auth), timeout=30)
    assert r.status_code == 200, r.text
    states: dict[str, float] = {}
    for line in r.text.splitlines():
        if line.startswith("stockade_warm_pool_sandboxes{"):
            state = line.split('state="')[1].split('"')[0]
            states[state] = float(line.rsplit(" ", 1)[1])
    return states


def _basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


def test_clients_walking_away_from_blocking_invokes_leak_no_slot(platform: tuple[Server, str]) -> None:
    """A storm of blocking invokes whose clients disconnect at once (many actions, cold and warm): the
    invoker ends with nothing busy and nothing waiting, and still serves both tenants."""
    server, mallory = platform
    with _client(server, mallory) as evil:
        for index in range(4):
            _put(evil, f"storm{index}", SLEEPER)

    def hang_up(index: int) -> None:
        with (
            httpx.Client(base_url=server.url + "/api/v1", headers=_basic(mallory), timeout=0.05) as quick_exit,
            contextlib.suppress(httpx.HTTPError),
        ):
            quick_exit.post(f"/namespaces/_/actions/storm{index % 4}?blocking=true", json={"s": 0.3})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(hang_up, range(24)))
    _until(lambda: _pool(server)["busy"] == 0 and _pool(server)["waiting"] == 0, "the storm to drain")
    states = _pool(server)
    assert states["live"] <= POOL
    with _client(server, server.auth) as guest, _client(server, mallory) as evil:
        _put(guest, "after", ECHO)
        assert _result(guest, "after", {"y": 2})["result"] == {"echo": {"y": 2}}
        assert _result(evil, "storm0", {"s": 0})["success"]


def test_another_process_holding_the_sqlite_write_lock_loses_nothing(platform: tuple[Server, str]) -> None:
    """While another process holds the database's write lock (as `sqlite3` or an admin command would),
    invokes and reads go on: no 500, every acknowledged activation is readable once the lock is gone."""
    server, _ = platform
    database = next(server.data_dir.glob("*.db"), None) or next(server.data_dir.rglob("*.sqlite*"), None)
    if database is None:
        pytest.skip(f"no SQLite database under {server.data_dir}")
    acknowledged: list[str] = []
    statuses: list[int] = []
    stop = threading.Event()
    with _client(server, server.auth) as guest:
        _put(guest, "ack", ECHO)
        assert _result(guest, "ack")["success"]

        def invoke_loop(blocking: bool) -> None:
            with _client(server, server.auth) as client:
                while not stop.is_set():
                    suffix = "?blocking=true" if blocking else ""
                    r = client.post(f"/namespaces/_/actions/ack{suffix}", json={"n": len(statuses)})
                    statuses.append(r.status_code)
                    if r.status_code in (200, 202):
                        acknowledged.append(r.json()["activationId"])
                    reads = client.get("/namespaces/_/actions?limit=5")
                    statuses.append(reads.status_code)

        workers = [threading.Thread(target=invoke_loop, args=(flag,)) for flag in (True, False, True, False)]
        for worker in workers:
            worker.start()
        try:
            _until(lambda: len(acknowledged) >= 8, "invokes before the lock")
            holder = sqlite3.connect(database, timeout=30, isolation_level=None)
            try:
                holder.execute("BEGIN IMMEDIATE")  # the write lock, held by another process's connection
                during = len(acknowledged)
                _until(lambda: len(statuses) >= 2 * during + 20, "requests while the lock is held", 60)
                read = guest.get("/namespaces/_/actions?limit=5")
                assert read.status_code == 200, read.text
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            count = len(acknowledged)
            _until(lambda: len(acknowledged) >= count + 8, "invokes after the lock")
        finally:
            stop.set()
            for worker in workers:
                worker.join(120)
        assert 500 not in statuses, sorted(set(statuses))
        assert set(statuses) <= {200, 202, 429, 503, 507}, sorted(set(statuses))
        missing = [i for i in acknowledged if guest.get(f"/namespaces/_/activations/{i}").status_code != 200]
        # Non-blocking runs may still be finishing: give them their time, then every one must be there.
        _until(
            lambda: all(guest.get(f"/namespaces/_/activations/{i}").status_code == 200 for i in missing),
            "every acknowledged activation",
        )


PY_SECRETS = """
import os
def main(args):
    return {'env': sorted(k for k in os.environ if k.startswith('STOCKADE_T')),
            'values': sorted(v for k, v in os.environ.items() if k.startswith('STOCKADE_T'))}
"""


@pytest.mark.parametrize("kind", ["python:3", "nodejs:20"])
def test_a_secret_reaches_its_own_action_once_and_no_other(platform: tuple[Server, str], kind: str) -> None:
    """A secret wired into one action appears in its runs under its one variable; another action of the
    namespace and Mallory's same-named action, on stem cells or warm sandboxes, never see it."""
    server, mallory = platform
    code = (
        PY_SECRETS
        if kind.startswith("python")
        else (
            "function main() { const k = Object.keys(process.env).filter((n) => n.startsWith('STOCKADE_T')).sort();"
            " return { env: k, values: k.map((n) => process.env[n]).sort() }; }\nexports.main = main;\n"
        )
    )
    value = "s3cr3t-" + kind.split(":")[0] + "-" + os.urandom(6).hex()
    suffix = kind.split(":")[0]
    with _client(server, server.auth) as guest, _client(server, mallory) as evil:
        assert guest.put(f"/namespaces/_/secrets/tok{suffix}", json={"value": value}).status_code == 200
        body = {
            "exec": {"kind": kind, "code": code},
            "annotations": [{"key": "secrets", "value": {"STOCKADE_TOKEN": f"tok{suffix}"}}],
        }
        r = guest.put(f"/namespaces/_/actions/wired{suffix}?overwrite=true", json=body)
        assert r.status_code == 200, r.text
        _put(guest, f"plain{suffix}", code, kind)
        _put(evil, f"wired{suffix}", code, kind)
        for _ in range(2):  # the first run (init) and a warm run
            seen = _result(guest, f"wired{suffix}")["result"]
            assert seen == {"env": ["STOCKADE_TOKEN"], "values": [value]}, seen
            assert _result(guest, f"plain{suffix}")["result"] == {"env": [], "values": []}
            assert _result(evil, f"wired{suffix}")["result"] == {"env": [], "values": []}
