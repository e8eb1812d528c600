"""Per-namespace throttle overrides: stored, applied by the throttle, reloaded when another process changes them."""

from __future__ import annotations

import asyncio

import pytest

from stockade.config import Settings
from stockade.domain import NamespaceLimits
from stockade.errors import BadRequestError, NotFoundError, ThrottledError
from stockade.services import build_services
from stockade.store import open_sqlite_store
from stockade.testing import FrozenClock, InProcessRunner


async def open_services(tmp_path, clock):
    store = open_sqlite_store(tmp_path / "db.sqlite")
    await store.open()
    return store, build_services(Settings(data_dir=tmp_path), store, InProcessRunner(), clock)


async def test_overrides_apply_to_their_namespace_only(tmp_path):
    clock = FrozenClock()
    store, services = await open_services(tmp_path, clock)
    try:
        await services.namespaces.create("busy")
        await services.namespaces.create("calm")
        await services.limits.set("busy", invocations_per_minute=1, fires_per_minute=0)
        throttle = services.throttle
        assert throttle.limits("busy") == (1, 30, 0)
        assert throttle.limits("calm") == (60, 30, 60)
        throttle.check_invoke("busy")
        with pytest.raises(ThrottledError, match=r"^Too many requests in the last minute \(count: 2, allowed: 1\)\.$"):
            throttle.check_invoke("busy")
        with pytest.raises(ThrottledError):
            throttle.check_fire("busy")
        throttle.check_invoke("calm")
        await services.limits.set("busy", concurrent_invocations=5)  # the other overrides stay
        assert throttle.limits("busy") == (1, 5, 0)
        assert await services.limits.reset("busy") is True
        assert throttle.limits("busy") == (60, 30, 60)
    finally:
        await store.close()


async def test_bad_values_and_unknown_namespaces(tmp_path):
    store, services = await open_services(tmp_path, FrozenClock())
    try:
        with pytest.raises(NotFoundError):
            await services.limits.set("ghost", invocations_per_minute=1)
        await services.namespaces.create("ns")
        with pytest.raises(BadRequestError):
            await services.limits.set("ns", invocations_per_minute=-1)
    finally:
        await store.close()


async def test_another_processes_change_arrives_through_the_epoch(tmp_path):
    clock = FrozenClock()
    store, services = await open_services(tmp_path, clock)
    admin_store, admin = await open_services(tmp_path, clock)
    try:
        await services.namespaces.create("ns")
        await services.limits.reload()
        await services.epoch.poll()
        await admin.limits.set("ns", invocations_per_minute=7)  # the operator's process
        assert services.throttle.limits("ns")[0] == 60
        await services.epoch.poll()  # the watcher notices the epoch moved and schedules a reload
        for _ in range(20):
            await asyncio.sleep(0.01)
            if services.throttle.limits("ns")[0] == 7:
                break
        assert services.throttle.limits("ns")[0] == 7
    finally:
        await services.limits.close()
        await admin_store.close()
        await store.close()


async def test_a_stale_table_is_reloaded(tmp_path):
    clock = FrozenClock()
    store, services = await open_services(tmp_path, clock)
    try:
        await services.namespaces.create("ns")
        await store.put_namespace_limits(NamespaceLimits("ns", 3))
        assert services.limits.get("ns") is None  # not loaded yet: the defaults apply, a load starts
        await services.limits.close()
        assert services.limits.get("ns").invocations_per_minute == 3
    finally:
        await store.close()
