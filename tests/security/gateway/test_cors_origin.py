"""Threat: a web page on another origin calls the API from visitors' browsers (drive-by use of the owner's budget)."""

from __future__ import annotations


def test_unlisted_origins_are_refused_before_the_action(gw):
    gw.route(verb="POST", corsOrigins=["https://app.example"])
    r = gw.call("POST", "/shop/items", json={}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert "access-control-allow-origin" not in r.headers
    pre = gw.call(
        "OPTIONS", "/shop/items", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert pre.status_code == 403
    assert "access-control-allow-origin" not in pre.headers
    assert gw.runs() == 0


def test_routes_without_cors_refuse_every_browser_origin(gw):
    gw.route()
    assert gw.call("GET", "/shop/items", headers={"Origin": "https://app.example"}).status_code == 403
    assert gw.call("GET", "/shop/items").status_code == 200  # no Origin: not a cross-origin browser call
