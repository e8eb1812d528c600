"""The console over an in-process app (TestClient), with a clock the test moves.

Namespaces "guest" and "other" with an owner key each; ``Console.sign_in`` goes through the
real sign-in form (login token cookie + field) and keeps the session cookie in the client.
"""

from __future__ import annotations

import base64
import re

import pytest
from starlette.testclient import TestClient

from stockade.api.app import Platform, create_app
from stockade.config import Settings
from stockade.console import console_routes
from stockade.gateway import gateway_routes
from stockade.store import open_sqlite_store
from stockade.testing import FrozenClock, InProcessRunner

HTML = {"accept": "text/html"}
_LOGIN_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Console:
    """A browser-like client of the console plus API helpers."""

    def __init__(self, client: TestClient, keys: dict[str, str], clock: FrozenClock, app) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.app = app

    @property
    def services(self):
        return self.app.state.services

    def api_auth(self, ns: str = "guest") -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(self.keys[ns].encode()).decode()}

    def api(self, method: str, path: str, ns: str = "guest", **kw):
        return self.client.request(method, path, headers={**self.api_auth(ns), **kw.pop("headers", {})}, **kw)

    def sign_in(self, credential: str):
        form = self.client.get("/console/login", headers=HTML)
        token = _LOGIN_TOKEN.search(form.text).group(1)
        return self.client.post(
            "/console/login",
            data={"login_token": token, "credential": credential},
            headers={**HTML, "sec-fetch-site": "same-origin"},
            follow_redirects=False,
        )

    def csrf(self, path: str) -> str:
        page = self.client.get(path, headers=HTML)
        assert page.status_code == 200, page.text
        return _CSRF.search(page.text).group(1)

    def run(self, fn, *args):
        return self.client.portal.call(fn, *args)


def make_console(tmp_path, settings: Settings | None = None) -> tuple:
    settings = settings or Settings(data_dir=tmp_path)
    clock = FrozenClock(now=1_790_000_000_000)
    keys: dict[str, str] = {}

    async def bootstrap(services):
        for ns in ("guest", "other"):
            keys[ns] = (await services.namespaces.create(ns)).token

    platform = Platform(
        settings=settings,
        store=open_sqlite_store(tmp_path / "db.sqlite"),
        runner=InProcessRunner(),
        clock=clock,
        routes=[*console_routes(), *gateway_routes()],
    )
    platform.on_open.append(bootstrap)
    return create_app(platform), keys, clock


@pytest.fixture
def console(tmp_path):
    app, keys, clock = make_console(tmp_path)
    with TestClient(app, base_url="http://testserver") as client:
        yield Console(client, keys, clock, app)
