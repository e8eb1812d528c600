"""The gateway pipeline end to end over the in-process runner: routing, arguments, mapping, headers."""

from __future__ import annotations

from stockade.gateway import client_of


def test_route_runs_the_action_with_path_query_and_body(gw):
    gw.route(rel="/items/{id}", verb="POST")
    r = gw.call("POST", "/shop/items/42?color=red", json={"qty": 2, "id": "spoofed"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["id"], out["color"], out["qty"]) == ("42", "red", 2)  # path parameters win
    assert (out["__ow_method"], out["__ow_path"]) == ("post", "/items/42")
    assert "__ow_user" not in out
    assert out["headers"]["x-stockade-client"] == "ip:testclient"  # TestClient's peer address
    assert out["headers"]["x-stockade-route"] == "POST /shop/items/{id}"
    assert len(r.headers["x-openwhisk-activation-id"]) == 32
    for header, value in (
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ):
        assert r.headers[header] == value
    assert "access-control-allow-origin" not in r.headers


def test_percent_encoded_parameters_are_decoded_once(gw):
    gw.route(rel="/books/{title}")
    r = gw.call("GET", "/shop/books/war%20and%20peace")
    assert r.json()["title"] == "war and peace"


def test_unknown_namespace_route_and_verb(gw):
    gw.route()
    assert gw.call("GET", "/shop/nothing").status_code == 404
    assert gw.api.client.get("/api/gw/nobody/shop/items").status_code == 404
    assert gw.api.client.get("/api/gw/").status_code == 404
    r = gw.call("DELETE", "/shop/items")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"
    assert r.json()["error"] == "The requested method is not allowed for this resource."
    assert gw.runs() == 0


def test_response_types(gw):
    gw.action("page", "def main(a):\n    return {'body': '<h1>hi</h1>'}\n")
    gw.action(
        "http",
        "def main(a):\n    return {'statusCode': 201, 'headers': {'X-Own': 'yes', 'Set-Cookie': 'a=b', 'Access-Control-Allow-Origin': '*'}, 'body': {'ok': True}}\n",
    )
    gw.route(rel="/page", action="page", responseType="html")
    gw.route(rel="/http", action="http", responseType="http")
    gw.route(rel="/text", action="page", responseType="text")
    page = gw.call("GET", "/shop/page")
    assert page.text == "<h1>hi</h1>"
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    http = gw.call("GET", "/shop/http")
    assert (http.status_code, http.json(), http.headers["x-own"]) == (201, {"ok": True}, "yes")
    assert "set-cookie" not in http.headers  # dropped unless the action allows cookies
    assert "access-control-allow-origin" not in http.headers  # CORS is the route's, not the action's
    assert gw.call("GET", "/shop/text").text == "<h1>hi</h1>"


def test_mapping_errors_and_application_errors(gw):
    gw.action("scalar", "def main(a):\n    return {'error': 'nope'}\n")
    gw.route(rel="/err", action="scalar")
    r = gw.call("GET", "/shop/err")
    assert r.status_code == 400
    assert r.json()["error"] == "Response is not valid 'application/json'."
    assert "x-openwhisk-activation-id" in r.headers


def test_route_to_a_missing_action_is_404_and_consumes_nothing(gw):
    gw.route(rel="/ghost", action="ghost", quota={"perDay": 1})
    assert gw.call("GET", "/shop/ghost").status_code == 404
    gw.action("ghost")
    assert gw.call("GET", "/shop/ghost").status_code == 200  # the quota was not spent by the 404


def test_api_key_callers_are_identified_and_their_key_is_not_forwarded(gw):
    gw.route(auth="api_key")
    r = gw.call("GET", "/shop/items", headers=gw.api.auth("other"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["__ow_user"] == "other"
    assert "authorization" not in out["headers"]
    assert out["headers"]["x-stockade-client"].startswith("key:")


def test_clients_cannot_forge_gateway_headers(gw):
    gw.route()
    r = gw.call("GET", "/shop/items", headers={"X-Stockade-Client": "key:admin", "X-Stockade-Route": "x"})
    assert r.json()["headers"]["x-stockade-client"].startswith("ip:")
    assert r.json()["headers"]["x-stockade-route"] == "GET /shop/items"


def test_open_routes_forward_authorization_for_the_action_to_check(gw):
    gw.route()
    r = gw.call("GET", "/shop/items", headers={"Authorization": "Bearer app-token"})
    assert r.json()["headers"]["authorization"] == "Bearer app-token"


def test_cors_preflight_and_allowed_origin(gw):
    gw.route(verb="POST", corsOrigins=["https://app.example"])
    pre = gw.call(
        "OPTIONS",
        "/shop/items",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-trace",
        },
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    assert pre.headers["access-control-allow-methods"] == "POST"
    assert pre.headers["access-control-allow-headers"] == "content-type, x-trace"
    assert gw.runs() == 0
    r = gw.call("POST", "/shop/items", json={}, headers={"Origin": "https://app.example"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["vary"] == "Origin"


def test_wildcard_cors(gw):
    gw.route(corsOrigins=["*"])
    r = gw.call("GET", "/shop/items", headers={"Origin": "https://any.example"})
    assert r.headers["access-control-allow-origin"] == "*"


def test_the_owners_namespace_throttle_applies_with_openwhisk_messages(api_factory, make_settings, make_gw):
    """Gateway calls are charged to the route's namespace; its 429 keeps OpenWhisk's message."""
    gw = make_gw(api_factory(make_settings(invocations_per_minute=2)))
    gw.route()
    assert [gw.call("GET", "/shop/items").status_code for _ in range(2)] == [200, 200]
    r = gw.call("GET", "/shop/items")
    assert r.status_code == 429
    assert r.json()["error"] == "Too many requests in the last minute (count: 3, allowed: 2)."
    assert 1 <= int(r.headers["retry-after"]) <= 61  # the sliding window spans 61 one-second buckets
    assert gw.runs() == 2


def test_client_key_of_anonymous_callers():
    assert client_of("10.1.2.3") == "ip:10.1.2.3"
    assert client_of("2001:db8:1:2:3:4:5:6") == "ip:2001:db8:1:2::/64"
    assert client_of("2001:db8:1:2:ffff::1") == client_of("2001:db8:1:2::9")
    assert client_of("::ffff:10.0.0.1") == "ip:10.0.0.1"
    assert client_of("testclient") == "ip:testclient"


def test_jwt_route_with_scopes(jwt_gw):
    gw, tokens = jwt_gw
    gw.route(auth="jwt", scopes=["items:read"])
    ok = gw.call("GET", "/shop/items", headers={"Authorization": f"Bearer {tokens.make('items:read other')}"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["headers"]["x-stockade-client"] == f"jwt:{'https://idp.gateway.test#alice'}"
    assert "authorization" not in ok.json()["headers"]


def test_gateway_urls_in_listings(gw):
    created = gw.route(base="/", rel="/")
    assert created["url"] == "http://127.0.0.1:3233/api/gw/guest"
    assert gw.call("GET", "").status_code == 200
    assert gw.call("GET", "/").status_code == 200
    listed = gw.api.get("/api/v1/namespaces/_/apis").json()
    assert [r["url"] for r in listed] == ["http://127.0.0.1:3233/api/gw/guest"]
