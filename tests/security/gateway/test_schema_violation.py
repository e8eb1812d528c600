"""Threat: bodies that violate a route's JSON Schema (400 before the action runs), and unsafe schemas."""

from __future__ import annotations

import pytest

SCHEMA = {
    "type": "object",
    "properties": {"q": {"type": "string", "maxLength": 5}, "n": {"type": "integer", "minimum": 0}},
    "required": ["q"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    "body",
    [{}, {"q": 5}, {"q": "toolong"}, {"q": "ok", "n": -1}, {"q": "ok", "admin": True}, [1, 2], "q"],
)
def test_schema_violations_never_reach_the_action(gw, body):
    gw.route(verb="POST", requestSchema=SCHEMA)
    r = gw.call("POST", "/shop/items", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("The request body does not match the API's schema: at /")
    assert gw.runs() == 0


def test_non_json_bodies_are_refused_on_schema_routes(gw):
    gw.route(verb="POST", requestSchema=SCHEMA)
    assert (
        gw.call("POST", "/shop/items", content=b"{bad", headers={"Content-Type": "application/json"}).status_code == 400
    )
    r = gw.call("POST", "/shop/items", content=b"q=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert gw.runs() == 0
    ok = gw.call("POST", "/shop/items", json={"q": "fine", "n": 1})
    assert ok.status_code == 200
    assert ok.json()["q"] == "fine"


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "nonsense"},
        {"type": "string", "pattern": "^(a+)+$"},
        {"properties": {"x": {"pattern": "(\\w*)*@"}}},
        {"patternProperties": {"([a-z]+)*": {}}},
        {"type": "string", "pattern": "(unclosed"},
        {"$ref": "https://evil.example/schema.json"},
        {"enum": ["x" * 70_000]},
    ],
)
def test_unsafe_or_invalid_schemas_are_refused_at_create_time(gw, schema):
    gw.route(verb="POST", requestSchema=schema, status=400)
