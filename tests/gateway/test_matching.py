"""Route matching: equal segment counts, literals before parameters, verbs per path."""

from __future__ import annotations

from stockade.domain import ApiRoute, EntityPath
from stockade.gateway import RouteTable


def route(base, rel, verb="GET", name="a"):
    return ApiRoute("ns", base, rel, verb, EntityPath("ns", name))


def test_literals_win_over_parameters():
    table = RouteTable(
        [
            route("/shop", "/items/{id}", name="one"),
            route("/shop", "/items/new", name="new"),
            route("/shop", "/{x}/{y}"),
        ]
    )
    match = table.match(("shop", "items", "new"), "GET")
    assert match.route.action.name == "new"
    match = table.match(("shop", "items", "42"), "GET")
    assert (match.route.action.name, match.params, match.rel_path) == ("one", {"id": "42"}, "/items/42")
    assert table.match(("shop", "other", "7"), "GET").params == {"x": "other", "y": "7"}


def test_no_partial_or_prefix_matches():
    table = RouteTable([route("/shop", "/items")])
    assert table.match(("shop",), "GET") is None
    assert table.match(("shop", "items", "x"), "GET") is None
    assert table.match(("Shop", "items"), "GET") is None


def test_verbs_and_root_routes():
    table = RouteTable([route("/", "/", "GET"), route("/api", "/", "POST"), route("/api", "/", "PUT")])
    assert table.match((), "GET") is not None
    assert table.match(("api",), "GET") is None
    assert table.verbs(("api",)) == ["POST", "PUT"]
    assert table.verbs(("nothing",)) == []
    assert table.match(("api",), "PUT").rel_path == "/"
