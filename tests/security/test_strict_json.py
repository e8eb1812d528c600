"""Strict JSON at every endpoint that parses a body: REST (action PUT, invoke, trigger fire), web
actions and the gateway. RFC 8259 only, bounded depth and members; each violation is an
OpenWhisk-shaped 400 (never a 500) and no activation is recorded.
"""

import pytest

A = "/api/v1/namespaces/_/actions"
ECHO = "def main(a):\n    return a\n"

DEEP = b"[" * 5000 + b"]" * 5000
BRACKETS = b"[" * 12288
BAD = {
    "deep_nesting": DEEP,
    "12kb_of_brackets": BRACKETS,
    "object_nesting_past_the_limit": b'{"a":' * 65 + b"1" + b"}" * 65,
    "lone_high_surrogate": b'{"a": "\\ud800"}',
    "lone_low_surrogate_key": b'{"\\udc00": 1}',
    "out_of_range_float": b'{"a": 1e400}',
    "negative_out_of_range_float": b'{"a": -1e400}',
    "nan": b'{"a": NaN}',
    "infinity": b'{"a": Infinity}',
    "minus_infinity": b'{"a": -Infinity}',
    "integer_past_64_bits": b'{"a": 18446744073709551616}',
    "integer_of_5000_digits": b'{"a": ' + b"9" * 5000 + b"}",
    "invalid_utf8": b'{"a": "\xff\xfe"}',
    "utf16": '{"a": 1}'.encode("utf-16"),
    "control_character_in_string": b'{"a": "x\x01y"}',
    "too_many_members": b"[" + b"0," * 100_001 + b"0]",
    "trailing_garbage": b'{"a": 1} x',
    "single_quotes": b"{'a': 1}",
    "duplicate_keys": b'{"token": "checked", "token": "used"}',
}
JSON = {"Content-Type": "application/json"}


def _shaped_400(r):
    assert r.status_code == 400, (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error", "code"}
    assert body["error"].startswith("The request content was malformed:")
    assert "Traceback" not in r.text


def _activations(api):
    return api.get("/api/v1/namespaces/_/activations?count=true").json()["activations"]


@pytest.fixture
def echo(api):
    body = {"exec": {"kind": "python:3", "code": ECHO}, "annotations": [{"key": "web-export", "value": True}]}
    assert api.put(f"{A}/echo", json=body).status_code == 200
    return api


@pytest.mark.parametrize("name", sorted(BAD))
def test_invoke_refuses(echo, name):
    before = _activations(echo)
    r = echo.post(f"{A}/echo?blocking=true", content=BAD[name], headers=JSON)
    _shaped_400(r)
    assert echo.runner.calls == []
    assert _activations(echo) == before


@pytest.mark.parametrize("name", sorted(BAD))
def test_web_action_refuses(echo, name):
    before = _activations(echo)
    r = echo.client.post("/api/v1/web/guest/default/echo.json", content=BAD[name], headers=JSON)
    _shaped_400(r)
    assert echo.runner.calls == []
    assert _activations(echo) == before


@pytest.mark.parametrize("name", sorted(BAD))
def test_gateway_refuses(echo, name):
    route = {"basePath": "/shop", "relPath": "/items", "verb": "POST", "action": "echo"}
    assert echo.put("/api/v1/namespaces/_/apis?overwrite=true", json=route).status_code == 200
    before = _activations(echo)
    r = echo.client.post("/api/gw/guest/shop/items", content=BAD[name], headers=JSON)
    _shaped_400(r)
    assert echo.runner.calls == []
    assert _activations(echo) == before


@pytest.mark.parametrize("name", sorted(BAD))
def test_trigger_fire_refuses(echo, name):
    assert echo.put("/api/v1/namespaces/_/triggers/t", json={}).status_code == 200
    before = _activations(echo)
    r = echo.post("/api/v1/namespaces/_/triggers/t", content=BAD[name], headers=JSON)
    _shaped_400(r)
    assert _activations(echo) == before


@pytest.mark.parametrize("name", sorted(BAD))
def test_action_put_refuses(api, name):
    r = api.put(f"{A}/x", content=BAD[name], headers=JSON)
    _shaped_400(r)
    assert api.get(f"{A}/x").status_code == 404


def test_undeclared_web_body_that_is_not_strict_json_reaches_the_action_unparsed(echo):
    """Without a JSON Content-Type a body is not parsed; 1e400 stays text, never Infinity."""
    r = echo.client.post("/api/v1/web/guest/default/echo.json", content=b'{"a": 1e400}')
    assert r.status_code == 200, r.text
    assert "a" not in r.json()
    assert r.json()["__ow_body"]


def test_strict_json_still_takes_what_rfc_8259_allows(echo):
    value = {"s": "é\u2028😀", "n": [0, -1, 1.5e300, 9223372036854775807, -9223372036854775808], "t": True, "z": None}
    r = echo.post(f"{A}/echo?blocking=true&result=true", json=value)
    assert r.status_code == 200, r.text
    assert r.json() == value
    r = echo.client.post("/api/v1/web/guest/default/echo.json", json={"deep": [[[[[[1]]]]]]})
    assert r.json()["deep"] == [[[[[[1]]]]]]
