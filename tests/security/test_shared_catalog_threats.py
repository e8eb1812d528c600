"""Attacks on what issue 14 added, through a real `stockade up` on loopback: the system namespace,
published packages of other tenants, fingerprints sent back in writes, `ns%2Fpkg` segments."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid

import httpx
import pytest

from e2e.conftest import start_server, stop_server

pytestmark = pytest.mark.e2e

ECHO = {"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}}
SECRET = "owner-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("stockade-shared")
    proc, server = start_server(data_dir)
    env = {**os.environ, "STOCKADE_DATA_DIR": str(data_dir)}
    made = subprocess.run(
        [sys.executable, "-m", "stockade.cli", "admin", "namespace-create", "mallory"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    mallory = made.stdout.split("AUTH=")[1].split()[0]
    try:
        yield server, mallory
    finally:
        stop_server(proc)


def _client(server, token):
    basic = base64.b64encode(token.encode()).decode()
    return httpx.Client(base_url=server.url + "/api/v1", headers={"Authorization": f"Basic {basic}"}, timeout=60)


def _envelope(r):
    assert r.status_code != 500, r.text
    assert set(r.json()) == {"error", "code"}, r.text
    assert SECRET not in r.text


def test_no_write_reaches_the_system_namespace(platform):
    server, mallory = platform
    with _client(server, mallory) as m:
        for path in (
            "/namespaces/whisk.system/actions/utils/echo?overwrite=true",
            "/namespaces/whisk.system%2Futils/actions/echo?overwrite=true",
            "/namespaces/whisk.system/actions/utils%2Fecho?overwrite=true",
            "/namespaces/whisk.system/actions/samples/new",
            "/namespaces/WHISK.SYSTEM/actions/utils/echo?overwrite=true",
        ):
            r = m.put(path, json=ECHO)
            # 400: an encoded slash inside an action name is refused by the edge before any route.
            assert r.status_code in (400, 403, 404), (path, r.status_code, r.text)
            _envelope(r)
        r = m.put("/namespaces/whisk.system/packages/utils?overwrite=true", json={"publish": False})
        assert r.status_code == 403
        # Through a binding of the catalog: writes inside a binding are refused.
        r = m.put("/namespaces/_/packages/u", json={"binding": {"namespace": "whisk.system", "name": "utils"}})
        assert r.status_code == 200, r.text
        r = m.put("/namespaces/_/actions/u/echo?overwrite=true", json=ECHO)
        assert r.status_code == 400
        assert r.json()["error"] == "Operation not permitted on package binding."
        echoed = m.post("/namespaces/whisk.system/actions/utils/echo?blocking=true&result=true", json={"x": 1})
        assert echoed.json() == {"x": 1}


def test_a_published_package_never_gives_its_values_away(platform):
    server, mallory = platform
    with _client(server, server.auth) as owner, _client(server, mallory) as m:
        r = owner.put(
            "/namespaces/_/packages/vault", json={"publish": True, "parameters": [{"key": "k", "value": SECRET}]}
        )
        assert r.status_code == 200
        owner.put("/namespaces/_/actions/vault/leak", json=ECHO)
        owner.put("/namespaces/_/actions/private", json={**ECHO, "parameters": [{"key": "k", "value": SECRET}]})
        shown = m.get("/namespaces/guest/packages/vault").json()["parameters"]
        assert SECRET not in str(shown)
        fingerprint = shown[0]
        # Every place a tenant could send the fingerprint back to get the value into its own hands.
        attempts = [
            ("/namespaces/_/actions/steal?overwrite=true", {**ECHO, "parameters": [fingerprint]}),
            ("/namespaces/_/packages/steal?overwrite=true", {"parameters": [fingerprint]}),
            ("/namespaces/_/triggers/steal?overwrite=true", {"parameters": [fingerprint]}),
            (
                "/namespaces/_/packages/steal2",
                {"binding": {"namespace": "guest", "name": "vault"}, "parameters": [fingerprint]},
            ),
        ]
        for path, body in attempts:
            r = m.put(path, json=body)
            assert r.status_code == 400, (path, r.text)
            assert "'k'" in r.json()["error"]
            _envelope(r)
        # A transfer token of the owner's (what `export` writes) opens nothing in another namespace.
        token_param = owner.get("/namespaces/_/actions/private?sealed=true").json()["parameters"][0]
        assert SECRET not in str(token_param)
        r = m.put("/namespaces/_/actions/with-token", json={**ECHO, "parameters": [token_param]})
        assert r.status_code == 400
        _envelope(r)
        assert m.get("/namespaces/guest/packages/vault?sealed=true").status_code == 403
        # Invoking through a binding runs the owner's action with the owner's value: that is what
        # publishing means; the value is never shown by any read.
        m.put("/namespaces/_/packages/mine", json={"binding": {"namespace": "guest", "name": "vault"}})
        for path in (
            "/namespaces/_/packages/mine",
            "/namespaces/guest/packages/vault",
            "/namespaces/guest/actions/vault/leak",
        ):
            assert SECRET not in m.get(path).text
        # Private entities stay private: 403 whether or not they exist.
        assert m.get("/namespaces/guest/actions/private").status_code == 403
        assert m.get("/namespaces/guest/actions/nothing-here").status_code == 403
        seq = {"exec": {"kind": "sequence", "components": ["/guest/private"]}}
        r = m.put("/namespaces/_/actions/seq", json=seq)
        assert r.status_code == 403  # the caller needs READ on each component, as in OpenWhisk
        missing = m.put("/namespaces/_/actions/seq", json={"exec": {"kind": "sequence", "components": ["/guest/nope"]}})
        # No existence leak: the same refusal, naming only what the caller asked for.
        assert missing.status_code == 403
        assert missing.json()["error"] == r.json()["error"].replace("guest/private", "guest/nope")
        m.put("/namespaces/_/triggers/t", json={})
        r = m.put("/namespaces/_/rules/r", json={"trigger": "/_/t", "action": "/guest/private"})
        assert r.status_code in (400, 403), r.text
        _envelope(r)


@pytest.mark.parametrize(
    "parameters",
    [
        [{"key": "k", "value": 123, "encryption": "AES-256-GCM"}],
        [{"key": "k", "value": {"fp": "hmac-sha256:00"}, "encryption": "AES-256-GCM"}],
        [{"key": "k", "value": "plain", "encryption": "AES-256-GCM"}],
        [{"key": "k", "value": "hmac-sha256:" + "f" * 10_000, "encryption": "AES-256-GCM"}],
        [{"key": f"k{i}", "value": "hmac-sha256:" + f"{i:032x}", "encryption": "x"} for i in range(2000)],
    ],
)
def test_forged_fingerprints_are_refused_cleanly(platform, parameters):
    server, mallory = platform
    with _client(server, mallory) as m:
        r = m.put("/namespaces/_/actions/forged?overwrite=true", json={**ECHO, "parameters": parameters})
        assert r.status_code in (400, 413), r.text
        _envelope(r)
        assert m.get("/namespaces/_/actions/forged").status_code == 404


@pytest.mark.parametrize(
    "segment",
    ["guest%2F..", "guest%2F..%2Fmallory", "guest%252Fpkg", "%2e%2e%2Fpkg", "guest%2Fpkg%00", "guest%2F%2F", "%2F"],
)
def test_encoded_namespace_segments_never_escape(platform, segment):
    server, mallory = platform
    with _client(server, mallory) as m:
        r = m.get(f"/namespaces/{segment}/actions/a")
        assert r.status_code in (400, 403, 404), (segment, r.status_code)
        _envelope(r)


def test_the_server_log_has_no_unhandled_errors_or_values(platform):
    server, _ = platform
    log = server.log()
    assert "api.unhandled_error" not in log
    assert "Traceback" not in log
    assert SECRET not in log
