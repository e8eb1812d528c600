"""Action-controlled responses (web actions, the gateway) through a live server.

The defect: a header name or value with CR/LF got the connection dropped with no response, and
``Location: javascript:...`` was passed through. Now: OpenWhisk's 400 "Response is not valid
'message/http'." (its answer to a bad header), the activation records why, and every response
carries the same secure headers.
"""

import json
import time

import pytest

A = "/api/v1/namespaces/_/actions"
SECURE = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


def _web_action(edge, name, headers, status=200):
    result = {"statusCode": status, "headers": headers, "body": "hello"}
    code = f"import json\n\n\ndef main(a):\n    return json.loads({json.dumps(result)!r})\n"
    body = {
        "exec": {"kind": "python:3", "code": code},
        "annotations": [{"key": "web-export", "value": True}],
    }
    r = edge.client.put(f"{A}/{name}?overwrite=true", json=body)
    assert r.status_code == 200, r.text


def _route(edge, name, base):
    route = {"basePath": base, "relPath": "/go", "verb": "GET", "action": name, "responseType": "http"}
    r = edge.client.put("/api/v1/namespaces/_/apis?overwrite=true", json=route)
    assert r.status_code == 200, r.text


def _refused_annotation(edge, activation_id):
    for _ in range(100):
        r = edge.client.get(f"/api/v1/namespaces/_/activations/{activation_id}")
        if r.status_code == 200:
            annotations = {a["key"]: a["value"] for a in r.json()["annotations"]}
            return annotations.get("responseRefused")
        time.sleep(0.05)
    raise AssertionError(f"activation {activation_id} was not recorded")


UNSAFE = {
    "crlf_in_value": ({"x-a": "1\r\nSet-Cookie: evil=1"}, "control"),
    "lf_in_value": ({"x-a": "1\nx-b: 2"}, "control"),
    "nul_in_value": ({"x-a": "a\u0000b"}, "control"),
    "crlf_in_name": ({"x-a\r\nx-b": "1"}, "not a token"),
    "space_in_name": ({"x a": "1"}, "not a token"),
    "javascript_location": ({"location": "javascript:alert(document.domain)"}, "scheme"),
    "tab_hidden_javascript_location": ({"location": "java\tscript:alert(1)"}, "whitespace"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_web_action_headers_are_refused_and_recorded(edge, case):
    headers, why = UNSAFE[case]
    name = f"unsafe-{case.replace('_', '-')}"
    _web_action(edge, name, headers, status=302 if "location" in headers else 200)
    r = edge.client.get(f"/api/v1/web/guest/default/{name}.http")
    assert r.status_code == 400
    assert r.json()["error"] == "Response is not valid 'message/http'."
    assert "evil" not in r.headers.get("set-cookie", "")
    assert "location" not in r.headers
    reason = _refused_annotation(edge, r.headers["x-openwhisk-activation-id"])
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize("case", ["crlf_in_value", "javascript_location", "crlf_in_name"])
def test_unsafe_gateway_headers_are_refused_and_recorded(edge, case):
    headers, why = UNSAFE[case]
    name = f"gw-{case.replace('_', '-')}"
    _web_action(edge, name, headers)
    _route(edge, name, f"/{name}")
    r = edge.client.get(f"/api/gw/guest/{name}/go")
    assert r.status_code == 400
    assert r.json()["error"] == "Response is not valid 'message/http'."
    assert why in _refused_annotation(edge, r.headers["x-openwhisk-activation-id"])


@pytest.mark.parametrize("status", [101, 100, 199, 600, 999])
def test_interim_and_out_of_range_statuses_are_refused(edge, status):
    """uvicorn has no status line past 599 (the connection dropped) and a 1xx is not a final answer."""
    name = f"status-{status}"
    _web_action(edge, name, {"x-a": "1"}, status=status)
    r = edge.client.get(f"/api/v1/web/guest/default/{name}.http")
    assert r.status_code == 400
    assert r.json()["error"] == "Response is not valid 'message/http'."


def test_safe_redirects_pass(edge):
    _web_action(edge, "redirect", {"location": "https://example.com/next"}, status=302)
    r = edge.client.get("/api/v1/web/guest/default/redirect.http", follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == "https://example.com/next"
    assert _refused_annotation(edge, r.headers["x-openwhisk-activation-id"]) is None


def test_rest_web_and_gateway_share_the_secure_headers(edge):
    _web_action(edge, "plain", {"content-type": "text/plain"})
    _route(edge, "plain", "/plain")
    rest = edge.client.get("/api/v1/namespaces/_/actions")
    web = edge.client.get("/api/v1/web/guest/default/plain.http")
    gateway = edge.client.get("/api/gw/guest/plain/go")
    error = edge.client.get("/api/v1/namespaces/_/actions/missing")
    for r in (rest, web, gateway, error):
        for name, value in SECURE.items():
            assert r.headers[name] == value, (r.url, name)
        assert r.headers["cache-control"] == "no-store"
