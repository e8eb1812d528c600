"""DispatchRunner and InvokerWorker in one process over a real NATS JetStream (issue 15).

The API's runner is the controller's dispatcher; an invoker worker over the same store runs the
sealed request with the in-process test runner. Needs the NATS server of scripts/services (the ``nats_url`` fixture).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from stockade.api.app import Platform, create_app
from stockade.cluster import DispatchRunner, InvokerWorker
from stockade.config import Settings
from stockade.store import open_sqlite_store
from stockade.testing import InProcessRunner

A = "/api/v1/namespaces/_/actions"


@pytest.fixture
def cluster_api(tmp_path, nats_url):
    suffix = secrets.token_hex(4)
    base = Settings(data_dir=tmp_path)
    settings = replace(
        base, nats=replace(base.nats, url=nats_url, process_id=f"c{suffix}", dead_after_s=2.0, heartbeat_s=0.5)
    )
    dispatcher = DispatchRunner(settings.nats, f"c{suffix}")
    local = InProcessRunner()
    workers: list[InvokerWorker] = []
    keys: dict[str, str] = {}

    async def start(services):
        keys["guest"] = (await services.namespaces.create("guest")).token
        await dispatcher.start(services.vault)
        worker = InvokerWorker(settings.nats, f"i{suffix}", local, services.catalog, services.vault)
        await worker.start()
        workers.append(worker)
        await dispatcher.refresh_members()

    async def stop():
        for worker in workers:
            await worker.stop()
        await dispatcher.close()

    platform = Platform(settings=settings, store=open_sqlite_store(tmp_path / "db.sqlite"), runner=dispatcher)
    platform.on_open.append(start)
    platform.on_close.append(stop)
    with TestClient(create_app(platform)) as client:
        yield _Api(client, keys, local), dispatcher, workers


class _Api:
    def __init__(self, client, keys, runner):
        self.client, self.keys, self.runner = client, keys, runner

    def _headers(self):
        return {"Authorization": "Basic " + base64.b64encode(self.keys["guest"].encode()).decode()}

    def put(self, path, **kw):
        return self.client.put(path, headers=self._headers(), **kw)

    def post(self, path, **kw):
        return self.client.post(path, headers=self._headers(), **kw)


def test_a_run_goes_through_jetstream_sealed_and_comes_back(cluster_api):
    api, dispatcher, workers = cluster_api
    code = "def main(a):\n    return {'v': a.get('v'), 'b': a.get('b')}\n"
    body = {"exec": {"kind": "python:3", "code": code}, "parameters": [{"key": "b", "value": "bound"}]}
    assert api.put(f"{A}/d", json=body).status_code == 200
    r = api.post(f"{A}/d?blocking=true&result=true", json={"v": 7})
    assert r.status_code == 200, r.text
    assert r.json() == {"v": 7, "b": "bound"}
    request = api.runner.requests[-1]
    assert request.namespace == "guest"
    assert request.at_most_once is True
    assert workers[0].runs == 1
    assert workers[0].invoker_id in dispatcher.members
    assert dispatcher.pool_statistics()["max_sandboxes"] >= 16
    accepted = api.post(f"{A}/d", json={"v": 8})
    assert accepted.status_code == 202


def test_placement_prefers_the_home_and_overflows_when_it_is_full(cluster_api):
    api, dispatcher, workers = cluster_api
    assert (
        api.put(f"{A}/p", json={"exec": {"kind": "python:3", "code": "def main(a):\n    return {}\n"}}).status_code
        == 200
    )
    assert api.post(f"{A}/p?blocking=true", json={}).status_code == 200
    request = api.runner.requests[-1]
    assert dispatcher.place(request) == workers[0].invoker_id
    assert dispatcher.place(request, exclude=(workers[0].invoker_id,)) in {"any", *dispatcher.members}


def test_an_unreadable_heartbeat_bucket_keeps_the_members_as_last_seen(cluster_api, monkeypatch):
    """A NATS hiccup is not every invoker gone: runs keep their placement and nothing is lost."""
    api, dispatcher, workers = cluster_api
    assert (
        api.put(f"{A}/h", json={"exec": {"kind": "python:3", "code": "def main(a):\n    return {}\n"}}).status_code
        == 200
    )
    assert api.post(f"{A}/h?blocking=true", json={}).status_code == 200
    member = workers[0].invoker_id
    assert member in dispatcher.members

    async def unavailable(*args, **kwargs):
        raise TimeoutError("nats: timeout")

    monkeypatch.setattr(dispatcher._js, "stream_info", unavailable)
    with pytest.raises(TimeoutError):
        api.client.portal.call(dispatcher.refresh_members)
    with pytest.raises(TimeoutError):
        api.client.portal.call(dispatcher.live_controllers)
    assert member in dispatcher.members
    request = api.runner.requests[-1]
    assert dispatcher.place(request) == member
    r = api.post(f"{A}/h?blocking=true&result=true", json={})
    assert r.status_code == 200, r.text
    assert workers[0].runs == 2


def test_live_keys_lists_the_keys_holding_a_value_and_leaves_out_deleted_ones(nats_url):
    import asyncio

    import nats as nats_client
    from nats.js.api import KeyValueConfig

    from stockade.cluster.jetstream import live_keys

    async def scenario():
        nc = await nats_client.connect(nats_url)
        js = nc.jetstream()
        bucket = f"t{secrets.token_hex(4)}"
        kv = await js.create_key_value(KeyValueConfig(bucket=bucket, ttl=30.0, history=1))
        try:
            assert await live_keys(js, kv, bucket) == {}
            await kv.put("a", b'{"slots": 1}')
            await kv.put("b", b"{}")
            await kv.put("a", b'{"slots": 2}')
            await kv.delete("b")
            return await live_keys(js, kv, bucket)
        finally:
            await js.delete_key_value(bucket)
            await nc.close()

    assert asyncio.run(scenario()) == {"a": b'{"slots": 2}'}


def test_runs_that_finished_free_their_invokers_slots_between_heartbeats(cluster_api):
    """More sequential runs than the invoker has slots, all between two reads of the heartbeats:
    each finished before the next was placed, so every one goes to the invoker itself, not to the
    overflow subject (which it serves only while its own queue is idle)."""
    api, dispatcher, workers = cluster_api
    assert (
        api.put(f"{A}/s", json={"exec": {"kind": "python:3", "code": "def main(a):\n    return {}\n"}}).status_code
        == 200
    )
    api.client.portal.call(dispatcher.refresh_members)
    dispatcher._watch.cancel()  # no heartbeat read from here on: only this controller's own counts move
    slots = dispatcher.members[workers[0].invoker_id].slots
    for _ in range(slots + 4):
        assert api.post(f"{A}/s?blocking=true", json={}).status_code == 200
    assert dispatcher.place(api.runner.requests[-1]) == workers[0].invoker_id
