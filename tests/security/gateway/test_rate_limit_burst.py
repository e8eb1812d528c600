"""Threat: a burst above a route's rate limit. 429 with Retry-After, and the action never runs."""

from __future__ import annotations


def test_client_burst_above_the_bucket_is_refused_before_the_action(gw):
    gw.route(clientRateLimit={"capacity": 3, "refillPerSecond": 0.01})
    statuses = [gw.call("GET", "/shop/items").status_code for _ in range(10)]
    assert statuses == [200] * 3 + [429] * 7
    refused = gw.call("GET", "/shop/items")
    assert refused.json()["error"] == "Rate limit exceeded for this API; retry later."
    assert int(refused.headers["retry-after"]) >= 1
    assert gw.runs() == 3


def test_each_client_has_its_own_bucket_and_the_route_one_bounds_them_all(gw):
    gw.route(
        auth="api_key",
        clientRateLimit={"capacity": 2, "refillPerSecond": 0.01},
        routeRateLimit={"capacity": 3, "refillPerSecond": 0.01},
    )
    guest, other = gw.api.auth("guest"), gw.api.auth("other")
    assert [gw.call("GET", "/shop/items", headers=guest).status_code for _ in range(3)] == [200, 200, 429]
    # The other client still has its own bucket, but the route's bucket has one token left.
    assert [gw.call("GET", "/shop/items", headers=other).status_code for _ in range(2)] == [200, 429]
    assert gw.runs() == 3


def test_a_refused_request_takes_no_token_from_the_other_bucket(gw):
    gw.route(
        clientRateLimit={"capacity": 5, "refillPerSecond": 0.01},
        routeRateLimit={"capacity": 1, "refillPerSecond": 0.01},
    )
    assert [gw.call("GET", "/shop/items").status_code for _ in range(3)] == [200, 429, 429]
    assert gw.runs() == 1
