"""Session-wide fixtures: external services the marked tests need.

PostgreSQL: ``STOCKADE_TEST_POSTGRES_URL`` if set, else the throwaway cluster of ``scripts/services``
(started here, and stopped at the end if this session started it). When PostgreSQL cannot run,
``@pytest.mark.postgres`` tests skip with the reason, or fail if ``STOCKADE_TEST_REQUIRE_POSTGRES=1``
(for CI, where a silent skip would hide the whole engine).
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from starlette.testclient import TestClient

from live import LiveClient
from stockade.api.app import Platform, create_app
from stockade.config import Settings
from stockade.console import console_routes
from stockade.gateway import gateway_routes
from stockade.store import open_sqlite_store
from stockade.testing import InProcessRunner

REPO = Path(__file__).resolve().parent.parent
SERVICES = REPO / "scripts" / "services"


def _services(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVICES), command], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, check=False
    )


async def _probe(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    await conn.close()


def _connect_error(url: str) -> str | None:
    """Why ``url`` cannot be connected to, or None. Runs on a loop of its own, off the test's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(asyncio.run, _probe(url)).result()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            return type(exc).__name__
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("STOCKADE_TEST_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required (STOCKADE_TEST_REQUIRE_POSTGRES=1) but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose role may create databases; skips the test when there is none."""
    url = os.environ.get("STOCKADE_TEST_POSTGRES_URL")
    if url:
        error = _connect_error(url)
        if error:
            _unavailable(f"cannot connect to STOCKADE_TEST_POSTGRES_URL ({error})")
        yield url
        return
    started_here = _services("status").returncode != 0
    if started_here:
        start = _services("start")
        if start.returncode != 0:
            _unavailable(f"scripts/services start failed: {start.stderr.strip() or start.stdout.strip()}")
    env = _services("env")
    if env.returncode != 0 or not env.stdout.startswith("STOCKADE_TEST_POSTGRES_URL="):
        _unavailable(f"scripts/services env failed: {env.stderr.strip()}")
    try:
        # The first line; scripts/services env prints the NATS URL on the next.
        yield env.stdout.splitlines()[0].split("=", 1)[1]
    finally:
        if started_here:
            _services("stop")


@pytest.fixture(scope="session")
def nats_url() -> str:
    """A NATS server with JetStream (scripts/services starts one next to PostgreSQL)."""
    url = os.environ.get("STOCKADE_TEST_NATS_URL")
    if url:
        return url
    start = _services("start")
    env = _services("env")
    for line in env.stdout.splitlines():
        if line.startswith("STOCKADE_TEST_NATS_URL="):
            return line.split("=", 1)[1]
    _unavailable(f"no NATS server from scripts/services: {start.stderr.strip() or env.stderr.strip()}")
    raise AssertionError("unreachable")


# The REST API over an in-process runner, with namespaces "guest" and "other".


class Api:
    """A TestClient plus the keys of two namespaces."""

    def __init__(self, client, keys, runner):
        self.client = client
        self.keys = keys
        self.runner = runner

    def auth(self, ns="guest"):
        token = base64.b64encode(self.keys[ns].encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def request(self, method, path, ns="guest", **kw):
        headers = {**self.auth(ns), **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def make_api(tmp_path, settings=None):
    settings = settings or Settings(data_dir=tmp_path)
    if settings.scan.advisories_url == Settings().scan.advisories_url:
        # Tests reach nothing off this machine: advisory syncs go to a closed loopback port.
        settings = replace(settings, scan=replace(settings.scan, advisories_url="http://127.0.0.1:9/osv"))
    runner = InProcessRunner()
    keys = {}

    async def bootstrap(services):
        for ns in ("guest", "other"):
            key = await services.namespaces.create(ns)
            keys[ns] = key.token

    platform = Platform(
        settings=settings,
        store=open_sqlite_store(tmp_path / "db.sqlite"),
        runner=runner,
        routes=[*console_routes(), *gateway_routes()],
    )
    platform.on_open.append(bootstrap)
    return create_app(platform), keys, runner


# The fixtures whose client is a live server when STOCKADE_TEST_LIVE=1 (see client_for).
LIVE_FIXTURES = frozenset({"api", "api_factory"})


def pytest_collection_modifyitems(config, items):
    """In the live re-run (tests/security/test_live_server.py), keep only the tests a live server changes.

    A test that uses neither ``api`` nor ``api_factory`` runs exactly as in the ordinary run, so
    running it again there would add minutes and no coverage.
    """
    if os.environ.get("STOCKADE_TEST_LIVE") != "1":
        return
    keep = [item for item in items if LIVE_FIXTURES & set(getattr(item, "fixturenames", ()))]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def client_for(app):
    """TestClient in-process; a real server on loopback when STOCKADE_TEST_LIVE=1 (tests/live.py)."""
    return LiveClient(app) if os.environ.get("STOCKADE_TEST_LIVE") == "1" else TestClient(app)


@pytest.fixture
def api(tmp_path):
    app, keys, runner = make_api(tmp_path)
    with client_for(app) as client:
        yield Api(client, keys, runner)


@pytest.fixture
def make_settings(tmp_path):
    def build(**limits):
        base = Settings(data_dir=tmp_path)
        return replace(base, limits=replace(base.limits, **limits))

    return build


@pytest.fixture
def api_factory(tmp_path):
    clients = []

    def build(settings):
        app, keys, runner = make_api(tmp_path, settings)
        client = client_for(app)
        client.__enter__()
        clients.append(client)
        return Api(client, keys, runner)

    yield build
    for client in clients:
        client.__exit__(None, None, None)
