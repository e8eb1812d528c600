"""Threat: calling an API-key route without a key, with a wrong key, or with another kind of credential."""

from __future__ import annotations

import base64


def test_no_key_is_401_and_nothing_runs(gw):
    gw.route(auth="api_key")
    r = gw.call("GET", "/shop/items")
    assert r.status_code == 401
    assert r.json()["error"] == "The resource requires authentication, which was not supplied with the request"
    assert r.headers["www-authenticate"].startswith("Basic")
    assert gw.runs() == 0


def test_wrong_keys_and_other_schemes_are_401(gw):
    gw.route(auth="api_key")
    uuid = gw.api.keys["guest"].split(":", 1)[0]
    for authorization in (
        "Basic " + base64.b64encode(f"{uuid}:{'0' * 64}".encode()).decode(),
        "Basic " + base64.b64encode(b"nobody:" + b"0" * 64).decode(),
        "Basic !!!",
        "Bearer " + gw.api.keys["guest"],
        gw.api.keys["guest"],
    ):
        r = gw.call("GET", "/shop/items", headers={"Authorization": authorization})
        assert r.status_code == 401, authorization
    assert gw.runs() == 0
    assert gw.call("GET", "/shop/items", headers=gw.api.auth()).status_code == 200
