"""Threat: path traversal in route paths, at create time (400) and at request time (400, nothing runs)."""

from __future__ import annotations

import pytest

BAD_PATHS = [
    "/a/../b",
    "/a/./b",
    "/..",
    "/a//b",
    "/a/%2e%2e/b",
    "/a/%2E%2E",
    "/a%2fb",
    "/a%5c..",
    "/a\\..\\b",
    "/%252e%252e",
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_create_refuses_traversal_in_base_and_relative_paths(gw, path):
    gw.route(base=path, rel="/x", status=400)
    gw.route(base="/ok", rel=path, status=400)
    assert gw.api.get("/api/v1/namespaces/_/apis").json() == []


@pytest.mark.parametrize("path", BAD_PATHS)
def test_the_openwhisk_client_api_refuses_them_too(gw, path):
    doc = {
        "apidoc": {
            "namespace": "_",
            "gatewayBasePath": "/ok",
            "gatewayPath": path,
            "gatewayMethod": "GET",
            "action": {"name": "echo", "namespace": "_", "backendMethod": "GET", "backendUrl": "x", "authkey": "k"},
        }
    }
    r = gw.api.post("/api/v1/web/whisk.system/apimgmt/createApi", json=doc)
    assert r.status_code == 400
    assert gw.api.get("/api/v1/namespaces/_/apis").json() == []


@pytest.mark.parametrize(
    "raw",
    [
        "/api/gw/guest/shop/../admin/secret",
        "/api/gw/guest/shop/./items",
        "/api/gw/guest/shop//items",
        "/api/gw/guest/shop/%2e%2e/admin/secret",
        "/api/gw/guest/shop/%2E%2E/admin/secret",
        "/api/gw/guest/shop/.%2e/admin/secret",
        "/api/gw/guest/shop%2f..%2fadmin%2fsecret",
        "/api/gw/guest/shop%2Fitems",
        "/api/gw/guest/shop/%252e%252e/admin/secret",
        "/api/gw/guest/shop%5c..%5cadmin%5csecret",
        "/api/gw/guest/shop/items/%00",
        "/api/gw/../v1/namespaces/guest/actions",
        "/api/gw/guest/shop/items/%ff",
    ],
)
def test_requests_with_traversal_are_refused_before_routing(gw, raw):
    gw.action("secret", "def main(a):\n    return {'secret': 42}\n")
    gw.route(base="/shop", rel="/items/{id}")
    gw.route(base="/shop", rel="/items")
    gw.route(base="/admin", rel="/secret", action="secret", auth="api_key")
    status, body = gw.raw(raw)
    assert status == 400, (raw, body)
    assert "secret" not in str(body)
    assert gw.runs() == 0
    assert gw.runs("secret") == 0
