"""Key rotation while invocations run: nothing lost, nothing fails."""

import asyncio
import contextlib
from dataclasses import replace

from stockade.config import Settings
from stockade.domain import EntityPath, Identity, KeyValue, SystemClock
from stockade.security import load_keyring
from stockade.services import InvokeRequest, build_services
from stockade.store import open_sqlite_store
from stockade.testing import InProcessRunner

CODE = "def main(a):\n    return {'pw': a['pw'], 'pkg': a['pkgpw']}\n"


async def make(tmp_path):
    base = Settings(data_dir=tmp_path)
    settings = replace(base, limits=replace(base.limits, invocations_per_minute=10**9, concurrent_invocations=1000))
    store = open_sqlite_store(tmp_path / "db.sqlite")
    await store.open()
    services = build_services(settings, store, InProcessRunner(), SystemClock())
    services.recorder.start()
    key = await services.namespaces.create("ns")
    identity = Identity("ns", "ns", key.uuid)
    await services.packages.put(
        identity, EntityPath("ns", "pkg"), {"parameters": [{"key": "pkgpw", "value": "pkg-secret"}]}, overwrite=False
    )
    for i in range(10):
        body = {"exec": {"kind": "python:3", "code": CODE}, "parameters": [{"key": "pw", "value": f"secret-{i}"}]}
        await services.actions.put(identity, EntityPath("ns", f"a{i}", "pkg"), body, overwrite=False)
    await services.secrets.put(identity, "ns", "db", {"value": "db-secret"}, mode="create")
    return settings, store, services, identity


async def hammer(services, identity, stop: asyncio.Event, failures: list):
    count = 0
    while not stop.is_set():
        for i in range(10):
            result = await services.invoke.invoke(
                InvokeRequest(identity=identity, path=EntityPath("ns", f"a{i}", "pkg"), params={}, blocking=True)
            )
            act = result.activation
            if act is None or act.response.result != {"pw": f"secret-{i}", "pkg": "pkg-secret"}:
                failures.append(act.response if act else "no activation")
            count += 1
        await asyncio.sleep(0)
    return count


async def test_data_key_rotation_under_concurrent_invocations(tmp_path):
    _settings, store, services, identity = await make(tmp_path)
    stop, failures = asyncio.Event(), []
    workers = [asyncio.create_task(hammer(services, identity, stop, failures)) for _ in range(3)]
    await asyncio.sleep(0.05)
    before = {r.key_id for r in await store.list_data_keys("ns")}
    report = await services.rotation.rotate_data_key("ns")
    await asyncio.sleep(0.05)
    stop.set()
    counts = await asyncio.gather(*workers)
    assert sum(counts) > 30
    assert failures == []
    assert report.rewritten == 12  # 10 actions, 1 package, 1 secret version
    assert set(report.retired) == before
    states = {r.key_id: r.state for r in await store.list_data_keys("ns")}
    assert states[report.new_key_id] == "active"
    entity = await store.get_entity("ns", "pkg/a3")
    assert entity.doc["parameters"][0]["sealed"]["kid"] == report.new_key_id
    action = replace(await services.catalog.action("ns", "pkg/a3"), annotations=(KeyValue("secrets", {"DB": "db"}),))
    opened = await services.secrets.for_activation(action, "0" * 32)
    assert opened == {"DB": "db-secret"}
    await services.recorder.close()
    await store.close()


async def test_interrupted_data_key_rotation_loses_nothing(tmp_path, monkeypatch):
    _settings, store, services, identity = await make(tmp_path)
    rotation = services.rotation
    original = rotation._rewrite_entity
    calls = {"n": 0}

    async def crash_after_three(*args):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("power cut")
        return await original(*args)

    monkeypatch.setattr(rotation, "_rewrite_entity", crash_after_three)
    with contextlib.suppress(RuntimeError):
        await rotation.rotate_data_key("ns")
    monkeypatch.setattr(rotation, "_rewrite_entity", original)
    services.catalog._actions.clear()
    for i in range(10):
        result = await services.invoke.invoke(
            InvokeRequest(identity=identity, path=EntityPath("ns", f"a{i}", "pkg"), params={}, blocking=True)
        )
        assert result.activation.response.result == {"pw": f"secret-{i}", "pkg": "pkg-secret"}
    report = await rotation.rotate_data_key("ns")  # a second run completes the job
    assert report.retired
    await services.recorder.close()
    await store.close()


async def test_master_key_rotation_under_concurrent_invocations(tmp_path):
    settings, store, services, identity = await make(tmp_path)
    old_master = services.vault.keyring.current.key_id
    stop, failures = asyncio.Event(), []
    workers = [asyncio.create_task(hammer(services, identity, stop, failures)) for _ in range(3)]
    await asyncio.sleep(0.05)
    report = await services.rotation.rotate_master_key(settings.master_key_path)
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*workers)
    assert failures == []
    assert report.rewritten >= 1
    assert report.retired == (old_master,)
    ring = load_keyring(settings.master_key_path)
    assert [k.key_id for k in ring.keys] == [report.new_key_id]
    assert {r.master_key_id for r in await store.list_data_keys()} == {report.new_key_id}
    await services.recorder.close()
    await store.close()
    # A fresh process with only the new keyring reads everything.
    store2 = open_sqlite_store(tmp_path / "db.sqlite")
    await store2.open()
    fresh = build_services(settings, store2, InProcessRunner(), SystemClock())
    await fresh.vault.verify()
    fresh.recorder.start()
    result = await fresh.invoke.invoke(
        InvokeRequest(identity=identity, path=EntityPath("ns", "a1", "pkg"), params={}, blocking=True)
    )
    assert result.activation.response.result == {"pw": "secret-1", "pkg": "pkg-secret"}
    await fresh.recorder.close()
    await store2.close()
