"""Threat: one tenant exhausts the platform or the owner's budget. Per-namespace throttles set by the operator."""

from __future__ import annotations

import concurrent.futures


def _set_limits(api, namespace, **limits):
    services = api.client.app.state.services
    api.client.portal.call(lambda: services.limits.set(namespace, **limits))


def test_an_operator_limit_caps_one_namespace_and_not_the_others(gw):
    gw.route()
    _set_limits(gw.api, "guest", invocations_per_minute=2)
    statuses = [gw.call("GET", "/shop/items").status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    r = gw.call("GET", "/shop/items")
    assert r.json()["error"] == "Too many requests in the last minute (count: 5, allowed: 2)."
    assert "retry-after" in r.headers
    body = {"exec": {"kind": "python:3", "code": "def main(a):\n    return {}\n"}}
    assert gw.api.put("/api/v1/namespaces/_/actions/x", ns="other", json=body).status_code == 200
    for _ in range(4):
        assert gw.api.post("/api/v1/namespaces/_/actions/x?blocking=true", ns="other").status_code == 200
    limits = gw.api.get("/api/v1/namespaces/_/limits").json()
    assert limits["invocationsPerMinute"] == 2
    assert gw.api.get("/api/v1/namespaces/_/limits", ns="other").json()["invocationsPerMinute"] == 60


def test_a_concurrency_limit_keeps_the_openwhisk_message(gw):
    gw.action("slow", "import asyncio\nasync def main(a):\n    await asyncio.sleep(0.3)\n    return {}\n")
    gw.route(rel="/slow", action="slow")
    _set_limits(gw.api, "guest", concurrent_invocations=1)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: gw.call("GET", "/shop/slow"), range(4)))
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) >= 1
    assert 429 in statuses
    refused = next(r for r in results if r.status_code == 429)
    assert refused.json()["error"] == "Too many concurrent requests in flight (count: 1, allowed: 1)."


def test_a_suspended_namespace_runs_nothing(gw):
    gw.route()
    _set_limits(gw.api, "guest", invocations_per_minute=0)
    assert gw.call("GET", "/shop/items").status_code == 429
    assert gw.api.post("/api/v1/namespaces/_/actions/echo?blocking=true").status_code == 429
    assert gw.runs() == 0
