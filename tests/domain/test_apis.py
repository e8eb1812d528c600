"""Route records: strict path validation (traversal refused, never normalised away), options, JSON form."""

from __future__ import annotations

import pytest

from stockade.domain import (
    ApiRoute,
    EntityPath,
    Quota,
    RateLimit,
    RouteOptions,
    api_route_from_json,
    api_route_to_json,
    normalise_base_path,
    normalise_relative_path,
    split_request_path,
)
from stockade.errors import BadRequestError


def test_canonical_paths():
    assert normalise_base_path("/") == "/"
    assert normalise_base_path("/shop/") == "/shop"
    assert normalise_base_path("/v1.2/shop") == "/v1.2/shop"
    assert normalise_relative_path("/items/{id}/") == "/items/{id}"
    assert normalise_relative_path("/a/{x}/b/{y}") == "/a/{x}/b/{y}"


@pytest.mark.parametrize(
    "path",
    [
        "shop",
        "/a/../b",
        "/a/./b",
        "/..",
        "/...",
        "/a//b",
        "//",
        "/a/%2e%2e/b",
        "/a%2Fb",
        "/a/%41",
        "/a\\..\\b",
        "/a b",
        "/a?b",
        "/a#b",
        "/ünï",
        "/" + "a/" * 40,
        "/" + "a" * 600,
    ],
)
def test_unsafe_paths_are_refused(path):
    with pytest.raises(BadRequestError):
        normalise_relative_path(path)
    with pytest.raises(BadRequestError):
        normalise_base_path(path)


def test_parameters_are_whole_segments_in_relative_paths_only():
    with pytest.raises(BadRequestError, match="cannot contain path parameters"):
        normalise_base_path("/{tenant}")
    for bad in ("/items/{id}.json", "/items/x{id}", "/items/{1id}", "/{a}/{a}", "/{}"):
        with pytest.raises(BadRequestError):
            normalise_relative_path(bad)


def test_refusals_never_echo_the_input():
    with pytest.raises(BadRequestError) as info:
        normalise_relative_path("/<script>")
    assert "<script>" not in info.value.message


@pytest.mark.parametrize(
    "raw",
    [
        "/api/gw/ns/b/../x",
        "/api/gw/ns/b/./x",
        "/api/gw/ns/b//x",
        "/api/gw/ns/b/%2e%2e/x",
        "/api/gw/ns/b/%2E%2E/x",
        "/api/gw/ns/b/.%2e/x",
        "/api/gw/ns/b%2f..%2fx",
        "/api/gw/ns/b%2Fx",
        "/api/gw/ns/b%5c..%5cx",
        "/api/gw/ns/b/%252e%252e/x",
        "/api/gw/ns/b\\..\\x",
    ],
)
def test_request_paths_with_traversal_are_refused(raw):
    with pytest.raises(BadRequestError):
        split_request_path(raw)


def test_request_paths_keep_other_encodings_for_the_router():
    assert split_request_path("/api/gw/ns/b/war%20and%20peace/") == ("api", "gw", "ns", "b", "war%20and%20peace")
    assert split_request_path("/") == ()


def test_route_invariants():
    action = EntityPath("ns", "hello")
    route = ApiRoute("ns", "/shop", "/items/{id}", "GET", action)
    assert route.template == ("shop", "items", "{id}")
    assert len(route.route_id) == 32
    assert ApiRoute("ns", "/", "/", "GET", action).template == ()
    with pytest.raises(BadRequestError, match="canonical"):
        ApiRoute("ns", "/shop/", "/x", "GET", action)
    with pytest.raises(BadRequestError, match="operation"):
        ApiRoute("ns", "/shop", "/x", "FETCH", action)
    with pytest.raises(BadRequestError, match="own namespace|API's namespace"):
        ApiRoute("ns", "/shop", "/x", "GET", EntityPath("other", "hello"))


def test_options_are_validated():
    with pytest.raises(BadRequestError):
        RouteOptions(auth="basic")  # type: ignore[arg-type]
    with pytest.raises(BadRequestError, match="jwt"):
        RouteOptions(auth="api_key", scopes=("read",))
    with pytest.raises(BadRequestError):
        RouteOptions(auth="jwt", scopes=('bad "scope"',))
    with pytest.raises(BadRequestError):
        RouteOptions(cors_origins=("https://a.example/path",))
    with pytest.raises(BadRequestError):
        RouteOptions(max_body_bytes=-1)
    with pytest.raises(BadRequestError):
        RouteOptions(request_schema=[1, 2])
    with pytest.raises(BadRequestError):
        RateLimit(0, 1)
    with pytest.raises(BadRequestError):
        RateLimit(1, float("inf"))
    with pytest.raises(BadRequestError):
        Quota(per_day=0)
    assert RouteOptions(cors_origins=("*", "http://localhost:8080")).cors_origins[1] == "http://localhost:8080"


def test_json_round_trip():
    raw = {
        "basePath": "/shop/",
        "relPath": "/items/{id}",
        "verb": "post",
        "action": "pkg/hello",
        "responseType": "HTTP",
        "apiName": "shop",
        "auth": "jwt",
        "scopes": ["items:write"],
        "requestSchema": {"type": "object"},
        "maxBodyBytes": 100,
        "corsOrigins": ["https://app.example"],
        "clientRateLimit": {"capacity": 3, "refillPerSecond": 1.5},
        "routeRateLimit": {"capacity": 30, "refillPerSecond": 10},
        "quota": {"perDay": 10, "perMonth": 100},
    }
    route = api_route_from_json("ns", raw, created=1, updated=2)
    assert route.base_path == "/shop"
    assert route.verb == "POST"
    assert route.response_type == "http"
    assert route.action == EntityPath("ns", "hello", "pkg")
    assert route.options.client_rate == RateLimit(3, 1.5)
    assert api_route_from_json("ns", api_route_to_json(route), created=1, updated=2) == route


@pytest.mark.parametrize(
    "patch",
    [
        {"basePath": None},
        {"verb": 3},
        {"maxBodyBytes": "big"},
        {"maxBodyBytes": True},
        {"scopes": "a b"},
        {"clientRateLimit": {"capacity": 1}},
        {"clientRateLimit": 5},
        {"quota": []},
        {"action": "/other/x"},
        {"auth": 1},
    ],
)
def test_json_errors_are_400(patch):
    raw = {"basePath": "/a", "relPath": "/b", "verb": "GET", "action": "x", **patch}
    with pytest.raises(BadRequestError):
        api_route_from_json("ns", raw)
    with pytest.raises(BadRequestError):
        api_route_from_json("ns", [raw])
