"""`stockade admin limits-set` / `limits-reset`: the operator's per-namespace throttles."""

import asyncio
import os
import subprocess
import sys

from stockade.store import open_sqlite_store


def admin(tmp_path, *args, check=True):
    env = {**os.environ, "STOCKADE_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "stockade.cli", "admin", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


async def stored(tmp_path, namespace):
    store = open_sqlite_store(tmp_path / "stockade.db")
    await store.open()
    try:
        return await store.get_namespace_limits(namespace)
    finally:
        await store.close()


def test_set_and_reset(tmp_path):
    admin(tmp_path, "namespace-create", "team")
    out = admin(tmp_path, "limits-set", "team", "--invocations-per-minute", "5", "--concurrent-invocations", "2").stdout
    assert out.strip() == "ok: team: invocations per minute 5, concurrent invocations 2, fires per minute default"
    out = admin(tmp_path, "limits-set", "team", "--fires-per-minute", "0").stdout
    assert "invocations per minute 5" in out
    assert "fires per minute 0" in out
    limits = asyncio.run(stored(tmp_path, "team"))
    assert (limits.invocations_per_minute, limits.concurrent_invocations, limits.fires_per_minute) == (5, 2, 0)
    assert "default throttles" in admin(tmp_path, "limits-reset", "team").stdout
    assert asyncio.run(stored(tmp_path, "team")) is None


def test_refusals(tmp_path):
    admin(tmp_path, "namespace-create", "team")
    assert admin(tmp_path, "limits-set", "ghost", "--invocations-per-minute", "5", check=False).returncode != 0
    assert admin(tmp_path, "limits-set", "team", "--invocations-per-minute", "-3", check=False).returncode != 0
    assert admin(tmp_path, "limits-set", "team", check=False).returncode != 0
