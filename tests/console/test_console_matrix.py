"""Every console route × every kind of caller, through a real `stockade up` on loopback.

The routes come from what the app serves (``console_routes()``); the expected answers are
written here, by hand, from the role table of docs/design/security-model.md, not read from
the code's policy file. A new console route without a row here fails the test.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from e2e.conftest import Server, start_server, stop_server
from stockade.console import console_routes

A = "/api/v1/namespaces/_/actions"
ROLES = ("owner", "developer", "deployer", "invoker", "viewer", "auditor")
# Who holds each right in namespace guest (written out, not loaded from roles.json).
HOLDERS = {
    "read": set(ROLES),
    "read_activations": {"owner", "developer", "invoker", "viewer"},
    "monitor": {"owner", "auditor"},
    "audit": {"owner", "auditor"},
}
# (method, path) → what it needs: a right in the URL's namespace, any live session, or nothing.
EXPECTED = {
    ("GET", "/console"): "public",
    ("GET", "/console/"): "public",
    ("GET", "/console/static/{file}"): "public",
    ("GET", "/console/login"): "public",
    ("POST", "/console/login"): "public",
    ("POST", "/console/logout"): "session",
    ("GET", "/console/ns/{ns}"): "read",
    ("GET", "/console/ns/{ns}/actions/{name:path}"): "read",
    ("GET", "/console/ns/{ns}/activations"): "read_activations",
    ("GET", "/console/ns/{ns}/activations/{id}"): "read_activations",
    ("GET", "/console/ns/{ns}/events"): "monitor",
    ("GET", "/console/ns/{ns}/alerts"): "monitor",
    ("GET", "/console/ns/{ns}/alerts/{id}"): "monitor",
    ("POST", "/console/ns/{ns}/alerts/{id}/ack"): "monitor",
    ("GET", "/console/ns/{ns}/audit"): "audit",
    ("GET", "/console/ns/{ns}/audit/export"): "audit",
}
CALLERS = (*ROLES, "other-namespace", "anonymous", "revoked", "forged")
SHELL_PY = 'import subprocess\n\n\ndef main(args):\n    return subprocess.check_output(args["c"], shell=True)\n'


def _basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


@dataclass
class World:
    server: Server
    keys: dict[str, str]
    activation_id: str
    alert_id: str


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    data_dir = Path(tempfile.mkdtemp(prefix="stockade-console-matrix-"))
    proc, server = start_server(data_dir)
    try:
        keys = {"owner": server.auth}
        with httpx.Client(base_url=server.url, headers=_basic(server.auth), timeout=60) as api:
            for role in (*ROLES[1:], "revoked"):
                made = api.post(
                    "/api/v1/namespaces/_/keys",
                    json={"subject": f"s-{role}", "role": "developer" if role == "revoked" else role},
                )
                assert made.status_code == 200, made.text
                keys[role] = made.json()["key"]
            code = "def main(a):\n    return {'ok': True}\n"
            assert api.put(f"{A}/fn", json={"exec": {"kind": "python:3", "code": code}}).status_code == 200
            invoked = api.post(f"{A}/fn?blocking=true")
            assert invoked.status_code == 200, invoked.text
            assert api.put(f"{A}/bad", json={"exec": {"kind": "python:3", "code": SHELL_PY}}).status_code == 400
            alert_id = ""
            for _ in range(100):
                listed = api.get("/api/v1/namespaces/_/alerts").json()
                if listed:
                    alert_id = listed[0]["id"]
                    break
                subprocess.run(["sleep", "0.1"], check=True)
            assert alert_id
        created = subprocess.run(
            [sys.executable, "-m", "stockade.admin", "--data-dir", str(data_dir), "namespace-create", "other"],
            capture_output=True,
            text=True,
            check=True,
        )
        keys["other-namespace"] = re.search(r"AUTH=(\S+)", created.stdout).group(1)
        yield World(server, keys, invoked.json()["activationId"], alert_id)
    finally:
        stop_server(proc)
        shutil.rmtree(data_dir, ignore_errors=True)


def _session(world: World, caller: str) -> httpx.Client:
    client = httpx.Client(base_url=world.server.url, timeout=60)
    if caller in ("anonymous",):
        return client
    if caller == "forged":
        client.cookies.set("stockade_console", "f" * 43, domain="127.0.0.1", path="/console")
        return client
    form = client.get("/console/login").text
    token = re.search(r'name="login_token" value="([^"]+)"', form).group(1)
    r = client.post("/console/login", data={"login_token": token, "credential": world.keys[caller]})
    assert r.status_code == 303, (caller, r.status_code, r.text)
    if caller == "revoked":
        uuid = world.keys["revoked"].split(":")[0]
        with httpx.Client(base_url=world.server.url, headers=_basic(world.keys["owner"])) as api:
            assert api.delete(f"/api/v1/namespaces/_/keys/{uuid}").status_code == 200
    return client


def _csrf(client: httpx.Client, caller: str) -> str:
    home = "/console/ns/other" if caller == "other-namespace" else "/console/ns/guest"
    page = client.get(home)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    return found.group(1) if found else "no-session"


def _url(path: str, world: World) -> str:
    url = path.replace("{ns}", "guest").replace("{name:path}", "fn").replace("{file}", "console.css")
    if "/activations/{id}" in url:
        url = url.replace("{id}", world.activation_id)
    return url.replace("{id}", world.alert_id)


def _expected(need: str, caller: str, method: str) -> int:
    if caller in ("anonymous", "revoked", "forged"):
        return 401
    if need == "session":
        return 303
    if caller in HOLDERS[need]:
        return 303 if method == "POST" else 200
    return 403


def test_every_console_route_is_in_the_matrix() -> None:
    served = {
        (method, route.path)
        for route in console_routes()
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert served == set(EXPECTED)


@pytest.mark.parametrize("caller", CALLERS)
def test_console_route_matrix(world: World, caller: str) -> None:
    client = _session(world, caller)
    try:
        csrf = _csrf(client, caller)
        wrong = []
        ordered = sorted(EXPECTED.items(), key=lambda item: item[0] == ("POST", "/console/logout"))
        for (method, path), need in ordered:
            if need == "public":
                continue
            url = _url(path, world)
            r = client.post(url, data={"csrf": csrf, "note": "matrix"}) if method == "POST" else client.get(url)
            expected = _expected(need, caller, method)
            if r.status_code != expected:
                wrong.append((method, url, r.status_code, expected))
            if r.status_code >= 400:
                assert set(r.json()) == {"error", "code"}, (url, r.text)
        assert not wrong, f"{caller}: {wrong}"
    finally:
        client.close()


def test_public_routes_answer_everyone(world: World) -> None:
    with httpx.Client(base_url=world.server.url) as client:
        assert client.get("/console").status_code == 303
        assert client.get("/console/").status_code == 303
        assert client.get("/console/login").status_code == 200
        assert client.get("/console/static/console.css").status_code == 200
    assert "unhandled_error" not in world.server.log()
