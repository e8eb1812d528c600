"""`stockade api ...`: route bodies, listings and deletes against the apis resource."""

from __future__ import annotations

import json

import pytest

from stockade.cli.apis import parse_rate
from stockade.cli.client import CliError

APIS = "/api/v1/namespaces/_/apis"


def test_create_sends_every_option(cli, api, tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["q"]}))
    api.reply(200, {"url": "http://h/api/gw/ns/shop/items/{id}"})
    result = cli(
        "api", "create", "/shop", "/items/{id}", "post", "hello",
        "--response-type", "http", "--client-auth", "jwt", "--scope", "items:write", "--scope", "items:read",
        "--schema", str(schema), "--max-body", "2048", "--rate", "5/s", "--burst", "10",
        "--route-rate", "600/m", "--quota-day", "100", "--quota-month", "1000",
        "--cors", "https://app.example", "--name", "shop",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert (api.last.method, api.last.path, api.last.query) == ("PUT", APIS, {})
    assert api.last.body == {
        "basePath": "/shop",
        "relPath": "/items/{id}",
        "verb": "POST",
        "action": "/_/hello",
        "responseType": "http",
        "auth": "jwt",
        "scopes": ["items:write", "items:read"],
        "corsOrigins": ["https://app.example"],
        "apiName": "shop",
        "requestSchema": {"type": "object", "required": ["q"]},
        "maxBodyBytes": 2048,
        "clientRateLimit": {"capacity": 10, "refillPerSecond": 5.0},
        "routeRateLimit": {"capacity": 10, "refillPerSecond": 10.0},
        "quota": {"perDay": 100, "perMonth": 1000},
    }
    assert result.out == "ok: created route POST http://h/api/gw/ns/shop/items/{id}\n"


def test_create_key_auth_and_overwrite(cli, api):
    api.reply(200, {"url": "u"})
    assert cli("api", "create", "/a", "/b", "GET", "pkg/x", "--client-auth", "key", "--overwrite").code == 0
    assert api.last.query == {"overwrite": "true"}
    assert api.last.body["auth"] == "api_key"
    assert api.last.body["action"] == "/_/pkg/x"


def test_bad_options_never_reach_the_server(cli, api, tmp_path):
    assert cli("api", "create", "/a", "/b", "GET", "x", "--scope", "s").code == 2
    assert cli("api", "create", "/a", "/b", "GET", "x", "--burst", "3").code == 2
    assert cli("api", "create", "/a", "/b", "GET", "x", "--rate", "fast").code == 2
    assert cli("api", "create", "/a", "/b", "GET", "x", "--schema", str(tmp_path / "missing")).code == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert cli("api", "create", "/a", "/b", "GET", "x", "--schema", str(bad)).code == 2
    assert cli("api", "create", "/a", "/b", "FETCH", "x").code == 2
    assert api.calls == []


def test_list_table_and_delete(cli, api):
    api.reply(
        200,
        [
            {
                "verb": "GET",
                "url": "http://h/api/gw/ns/a/b",
                "action": "/ns/x",
                "auth": "none",
                "clientRateLimit": {"capacity": 2, "refillPerSecond": 1.0},
                "quota": {"perDay": 5, "perMonth": None},
            }
        ],
    )
    result = cli("api", "list", "/a")
    assert api.last.query == {"basepath": "/a"}
    assert "client 1.0/s burst 2, 5/day" in result.out
    api.reply(200, {"deleted": 1})
    result = cli("api", "delete", "/a", "/b", "get")
    assert (api.last.method, api.last.query) == ("DELETE", {"basepath": "/a", "relpath": "/b", "operation": "GET"})
    assert result.out == "ok: deleted 1 route(s)\n"


def test_rates():
    assert parse_rate("10/s") == 10
    assert parse_rate("60/m") == 1
    assert parse_rate("2") == 2
    for bad in ("0/s", "-1", "1/d", "x"):
        with pytest.raises(CliError):
            parse_rate(bad)
