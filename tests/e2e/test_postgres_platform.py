"""The whole platform on PostgreSQL: `stockade up --store postgresql://...` serves and persists."""

import asyncio
import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from e2e.conftest import start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def database_url(postgres_url):
    name = f"stockade_e2e_{secrets.token_hex(5)}"
    asyncio.run(_execute(postgres_url, f"CREATE DATABASE {name}"))
    try:
        yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    finally:
        asyncio.run(_execute(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def test_platform_on_postgresql_survives_a_restart(tmp_path, database_url):
    proc, server = start_server(tmp_path, "--store", database_url)
    uuid, key = server.auth.split(":", 1)
    try:
        with httpx.Client(auth=(uuid, key), timeout=60) as client:
            base = f"{server.url}/api/v1/namespaces/_"
            body = {
                "exec": {"kind": "python:3", "code": "def main(a):\n    return {'v': a['v']}\n"},
                "parameters": [{"key": "v", "value": "from-postgres"}],
            }
            assert client.put(f"{base}/actions/pg", json=body).status_code == 200
            r = client.post(f"{base}/actions/pg?blocking=true&result=true", json={})
            assert r.status_code == 200, r.text
            assert r.json() == {"v": "from-postgres"}
    finally:
        stop_server(proc)
    # Same database and keyring, new process: everything is still there.
    proc, server2 = start_server(tmp_path, "--store", database_url)
    try:
        with httpx.Client(auth=(uuid, key), timeout=60) as client:
            base = f"{server2.url}/api/v1/namespaces/_"
            assert client.post(f"{base}/actions/pg?blocking=true&result=true", json={}).json() == {"v": "from-postgres"}
            assert len(client.get(f"{base}/activations").json()) >= 1
    finally:
        stop_server(proc)
