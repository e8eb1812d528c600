"""The gateway half of the Store contract: routes, quota counters (atomic, durable), namespace limits."""

from __future__ import annotations

import asyncio

import pytest

from stockade.domain import ApiRoute, EntityPath, Namespace, NamespaceLimits, Quota, RouteOptions
from stockade.errors import ConflictError
from stockade.store import QuotaWindow

INJECTION = "x'); DROP TABLE api_routes;--"


def route(rel="/items", verb="GET", base="/shop", ns="ns1", **options):
    return ApiRoute(ns, base, rel, verb, EntityPath(ns, "hello"), options=RouteOptions(**options), created=1, updated=2)


async def test_routes_round_trip_replace_and_delete(store):
    first = route(quota=Quota(per_day=5), auth="api_key")
    await store.put_api_route(first, replace=False)
    await store.put_api_route(route("/items/{id}"), replace=False)
    await store.put_api_route(route("/x", base="/other"), replace=False)
    with pytest.raises(ConflictError):
        await store.put_api_route(first, replace=False)
    assert await store.list_api_routes("ns1") == [route("/x", base="/other"), first, route("/items/{id}")]
    assert await store.count_api_routes("ns1") == 3
    await store.put_api_route(route(auth="none"), replace=True)
    assert (await store.list_api_routes("ns1"))[1].options.auth == "none"
    assert await store.delete_api_routes("ns1", "/shop", "/items", "POST") == 0
    assert await store.delete_api_routes("ns1", "/shop", "/items", "GET") == 1
    assert await store.delete_api_routes("ns1", "/shop") == 1
    assert [r.base_path for r in await store.list_api_routes("ns1")] == ["/other"]
    assert await store.list_api_routes("ns2") == []


async def test_route_values_are_bound_parameters(store):
    await store.put_api_route(route(), replace=False)
    assert await store.delete_api_routes("ns1", INJECTION) == 0
    assert await store.count_api_routes("ns1") == 1


async def test_quota_reservations_never_pass_the_limit(store):
    day = QuotaWindow("d:2026-01-01", 5, 10_000)
    assert await store.reserve_quota("ns1", "r1", "ip:1", day, 3) is True
    assert await store.reserve_quota("ns1", "r1", "ip:1", day, 3) is False  # 6 > 5: nothing counted
    assert await store.reserve_quota("ns1", "r1", "ip:1", day, 2) is True
    assert await store.reserve_quota("ns1", "r1", "ip:1", day, 1) is False
    assert await store.reserve_quota("ns1", "r1", "ip:2", day, 5) is True  # another client
    assert await store.reserve_quota("ns1", "r2", "ip:1", day, 1) is True  # another route
    assert await store.reserve_quota("ns1", "r1", "ip:1", QuotaWindow("d:2026-01-02", 5, 20_000), 1) is True


async def test_released_units_can_be_reserved_again(store):
    day = QuotaWindow("d:2026-01-01", 4, 10_000)
    assert await store.reserve_quota("ns1", "r", "c", day, 4) is True
    await store.release_quota("ns1", "r", "c", day.period, 3)
    assert await store.reserve_quota("ns1", "r", "c", day, 3) is True
    assert await store.reserve_quota("ns1", "r", "c", day, 1) is False
    await store.release_quota("ns1", "r", "c", day.period, 100)  # never below zero
    assert await store.reserve_quota("ns1", "r", "c", day, 4) is True
    await store.release_quota("ns1", "nothing", "c", day.period, 1)


async def test_quota_counters_survive_a_restart(make_store):
    day = QuotaWindow("d:2026-01-01", 1, 10_000)
    first = await make_store()
    assert await first.reserve_quota("ns1", "r", "c", day, 1) is True
    await first.close()
    second = await make_store()
    assert await second.reserve_quota("ns1", "r", "c", day, 1) is False


async def test_concurrent_reservations_never_exceed_the_quota(make_store):
    """Two store connections (two processes) racing for the last requests of a quota."""
    a, b = await make_store(), await make_store()
    day = QuotaWindow("d:2026-01-01", 10, 10_000)
    results = await asyncio.gather(*(s.reserve_quota("ns1", "r", "c", day, 1) for _ in range(15) for s in (a, b)))
    assert results.count(True) == 10


async def test_ended_periods_are_pruned(store):
    await store.reserve_quota("ns1", "r", "c", QuotaWindow("d:old", 1, 1_000), 1)
    await store.reserve_quota("ns1", "r", "c", QuotaWindow("m:new", 1, 5_000), 1)
    assert await store.prune_quota_usage(2_000) == 1
    assert await store.reserve_quota("ns1", "r", "c", QuotaWindow("d:old", 1, 1_000), 1) is True  # counter was gone


async def test_namespace_limits_and_the_epoch(store):
    await store.create_namespace(Namespace("ns1", "u1", 1))
    epoch = await store.security_epoch()
    assert await store.get_namespace_limits("ns1") is None
    await store.put_namespace_limits(NamespaceLimits("ns1", invocations_per_minute=5, updated=3))
    assert await store.security_epoch() == epoch + 1
    await store.put_namespace_limits(NamespaceLimits("ns1", invocations_per_minute=6, fires_per_minute=0, updated=4))
    assert await store.get_namespace_limits("ns1") == NamespaceLimits("ns1", 6, None, 0, 4)
    assert await store.list_namespace_limits() == [NamespaceLimits("ns1", 6, None, 0, 4)]
    assert await store.delete_namespace_limits("ns1") is True
    assert await store.delete_namespace_limits("ns1") is False
    assert await store.security_epoch() == epoch + 4
