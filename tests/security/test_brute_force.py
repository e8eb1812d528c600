"""Repeated authentication failures from one source are slowed, then refused (429), and recorded."""

import asyncio
import base64

import pytest

from stockade.errors import ThrottledError
from stockade.services.lockout import LoginGuard
from stockade.store import open_sqlite_store
from stockade.testing import FrozenClock


def _run(coro):
    return asyncio.run(coro)


async def _guard(path, clock, **kw):
    store = open_sqlite_store(path)
    await store.open()
    return store, LoginGuard(store, clock, refresh_s=0, **kw)


def test_guard_slows_then_locks_the_pair_then_forgives(tmp_path):
    async def scenario():
        clock = FrozenClock()
        store, guard = await _guard(
            tmp_path / "db.sqlite", clock, slow_after=2, pair_lock_after=4, source_lock_after=50
        )
        delays = [await guard.failed("uuid-a", "1.2.3.4") for _ in range(3)]
        assert delays == [0.0, 0.0, 0.5]
        await guard.failed("uuid-a", "1.2.3.4")
        assert await guard.is_locked("uuid-a", "1.2.3.4")
        # The pair is locked, not the subject (from elsewhere) nor the source (for other subjects).
        assert not await guard.is_locked("uuid-a", "5.6.7.8")
        assert not await guard.is_locked("uuid-b", "1.2.3.4")
        clock.advance(301_000)
        assert not await guard.is_locked("uuid-a", "1.2.3.4")
        await store.close()

    _run(scenario())


def test_guard_locks_a_source_trying_many_subjects(tmp_path):
    async def scenario():
        clock = FrozenClock()
        store, guard = await _guard(
            tmp_path / "db.sqlite", clock, slow_after=100, pair_lock_after=5, source_lock_after=8
        )
        for i in range(8):
            await guard.failed(f"uuid-{i}", "1.2.3.4")
        with pytest.raises(ThrottledError):
            await guard.check("never-tried", "1.2.3.4")
        assert not await guard.is_locked("uuid-0", "9.9.9.9")
        await store.close()

    _run(scenario())


def test_lockouts_survive_a_restart_and_are_shared_by_processes(tmp_path):
    """Two guards over one database (two processes); a new guard after closing (a restart)."""

    async def scenario():
        clock = FrozenClock()
        db = tmp_path / "db.sqlite"
        store_a, guard_a = await _guard(db, clock, slow_after=100, pair_lock_after=4, source_lock_after=100)
        store_b, guard_b = await _guard(db, clock, slow_after=100, pair_lock_after=4, source_lock_after=100)
        await guard_a.failed("uuid-a", "1.2.3.4")
        await guard_b.failed("uuid-a", "1.2.3.4")
        await guard_a.failed("uuid-a", "1.2.3.4")
        assert not await guard_b.is_locked("uuid-a", "1.2.3.4")
        await guard_b.failed("uuid-a", "1.2.3.4")  # the fourth, counted across both processes
        assert await guard_a.is_locked("uuid-a", "1.2.3.4")
        await store_a.close()
        await store_b.close()
        store_c, guard_c = await _guard(db, clock, slow_after=100, pair_lock_after=4, source_lock_after=100)
        assert await guard_c.is_locked("uuid-a", "1.2.3.4")
        await store_c.close()

    _run(scenario())


def test_api_locks_out_a_guessing_client(api_factory, make_settings):
    from dataclasses import replace

    settings = make_settings()
    settings = replace(settings, auth=replace(settings.auth, slow_after_failures=100, lockout_after_failures=5))
    api = api_factory(settings)
    uuid = api.keys["guest"].split(":")[0]
    for i in range(5):
        bad = base64.b64encode(f"{uuid}:{i:064d}".encode()).decode()
        assert api.client.get("/api/v1/namespaces", headers={"Authorization": f"Basic {bad}"}).status_code == 401
    locked = api.client.get("/api/v1/namespaces", headers=api.auth())
    assert locked.status_code == 429
    assert "Too many failed authentication attempts" in locked.json()["error"]
    services = api.client.app.state.services
    entries = api.client.portal.call(services.audit.entries, "")
    failures = [e for e in entries if e.entry["action"] == "auth.failed"]
    assert len(failures) == 5
    assert failures[0].entry["actor"] == uuid


def test_old_counters_are_pruned(tmp_path):
    async def scenario():
        clock = FrozenClock()
        store, guard = await _guard(tmp_path / "db.sqlite", clock, slow_after=100, pair_lock_after=50)
        for i in range(10):
            await guard.failed("uuid", f"192.0.2.{i}")
        clock.advance(400_000)  # past the window and any lockout
        await guard.failed("uuid", "198.51.100.1")
        # Only the new failure's two rows (its pair and its source) are left.
        row = await store._db.fetchone("SELECT COUNT(*) FROM login_failures")
        assert row[0] == 2
        await store.close()

    _run(scenario())
