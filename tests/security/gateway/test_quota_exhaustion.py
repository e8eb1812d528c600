"""Threat: a client spends a route's quota. 429 with Retry-After until the period ends; nothing runs."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from stockade.services import RetryLaterError, build_services
from stockade.testing import InProcessRunner


def test_daily_quota_is_enforced_per_client(gw):
    gw.route(auth="api_key", quota={"perDay": 3})
    guest, other = gw.api.auth("guest"), gw.api.auth("other")
    assert [gw.call("GET", "/shop/items", headers=guest).status_code for _ in range(5)] == [200] * 3 + [429] * 2
    refused = gw.call("GET", "/shop/items", headers=guest)
    assert refused.json()["error"] == "Quota exceeded: 3 requests per day for this client."
    seconds_to_midnight = 86_400 - int(time.time()) % 86_400
    assert abs(int(refused.headers["retry-after"]) - seconds_to_midnight) <= 5
    assert gw.call("GET", "/shop/items", headers=other).status_code == 200  # another client's quota is untouched
    assert gw.runs() == 4


def test_monthly_quota_and_both_periods_at_once(gw):
    gw.route(quota={"perDay": 10, "perMonth": 2})
    assert [gw.call("GET", "/shop/items").status_code for _ in range(3)] == [200, 200, 429]
    refused = gw.call("GET", "/shop/items")
    assert refused.json()["error"] == "Quota exceeded: 2 requests per month for this client."
    assert int(refused.headers["retry-after"]) > 0
    assert gw.runs() == 2


def test_requests_refused_earlier_do_not_spend_the_quota(gw):
    gw.route(auth="api_key", quota={"perDay": 1})
    for _ in range(5):
        assert gw.call("GET", "/shop/items").status_code == 401
    assert gw.call("GET", "/shop/items", headers=gw.api.auth()).status_code == 200


def test_quota_counters_are_in_the_store(gw):
    """Counted in the database: another process (or this one after a restart) sees the spent quota."""
    gw.route(quota={"perDay": 1})
    assert gw.call("GET", "/shop/items").status_code == 200
    services = gw.api.client.app.state.services
    restarted = build_services(services.settings, services.store, InProcessRunner(), services.clock)
    [route] = gw.api.client.portal.call(services.apis.routes_of, "guest")
    # The anonymous caller's client key: TestClient's host, or loopback on a live server.
    client = "ip:testclient" if isinstance(gw.api.client, TestClient) else "ip:127.0.0.1"
    with pytest.raises(RetryLaterError):
        gw.api.client.portal.call(restarted.apis.consume_quota, route, client)
