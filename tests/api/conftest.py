import base64
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from stockade.api.app import Platform, create_app
from stockade.config import Settings
from stockade.store import open_sqlite_store
from stockade.testing import InProcessRunner


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
    runner = InProcessRunner()
    keys = {}

    async def bootstrap(services):
        for ns in ("guest", "other"):
            key = await services.namespaces.create(ns)
            keys[ns] = key.token

    platform = Platform(settings=settings, store=open_sqlite_store(tmp_path / "db.sqlite"), runner=runner)
    platform.on_open.append(bootstrap)
    return create_app(platform), keys, runner


@pytest.fixture
def api(tmp_path):
    app, keys, runner = make_api(tmp_path)
    with TestClient(app) as client:
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
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return Api(client, keys, runner)

    yield build
    for client in clients:
        client.__exit__(None, None, None)
