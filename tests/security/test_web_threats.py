"""Threats to web actions (issue: web actions, sealed parameters, secrets), one test per threat."""

import base64
import hmac

import stockade.api.routes.web as web_route

A = "/api/v1/namespaces/_/actions"
W = "/api/v1/web/guest/default"
ECHO = "def main(a):\n    return a\n"


def web(api, name, code, annotations=(), parameters=(), export=True):
    ann = [{"key": "web-export", "value": True}] if export else []
    ann += [{"key": k, "value": v} for k, v in annotations]
    body = {"exec": {"kind": "python:3", "code": code}, "annotations": ann, "parameters": list(parameters)}
    r = api.put(f"{A}/{name}", json=body)
    assert r.status_code == 200, r.text
    return r


def test_not_web_exported_is_404(api):
    web(api, "hidden", ECHO, export=False)
    r = api.client.get(f"{W}/hidden.json")
    assert r.status_code == 404
    assert r.json()["error"] == "The requested resource does not exist."
    assert api.client.get("/api/v1/web/_/default/hidden.json").status_code == 404
    assert api.client.get("/api/v1/web/nobody/default/x.json").status_code == 404
    assert api.client.get(f"{W}/missing.json").status_code == 404


def test_query_cannot_set_reserved_keys(api):
    web(api, "echo", ECHO)
    r = api.client.get(f"{W}/echo.json?__ow_method=x")
    assert r.status_code == 400
    assert r.json()["error"] == "Request defines parameters that are not allowed (e.g., reserved properties)."
    r = api.client.post(f"{W}/echo.json", json={"__ow_user": "admin"})
    assert r.status_code == 400


def test_bound_parameters_are_sealed_on_the_web(api):
    web(api, "sealed", ECHO, parameters=[{"key": "token", "value": "bound"}])
    assert api.client.get(f"{W}/sealed.json?token=evil").status_code == 400
    assert api.client.post(f"{W}/sealed.json", json={"token": "evil"}).status_code == 400
    r = api.client.post(f"{W}/sealed.json", data={"token": "evil"})
    assert r.status_code == 400
    r = api.client.get(f"{W}/sealed.json", headers={"token": "evil"})
    assert r.json()["token"] == "bound"


def test_require_whisk_auth_secret(api):
    web(api, "guarded", ECHO, annotations=[("require-whisk-auth", "s3cr3t")])
    r = api.client.get(f"{W}/guarded.json")
    assert r.status_code == 401
    assert r.json()["error"] == "Authentication is possible but has failed or not yet been provided."
    assert api.client.get(f"{W}/guarded.json", headers={"X-Require-Whisk-Auth": "wrong"}).status_code == 401
    assert api.client.get(f"{W}/guarded.json", headers={"X-Require-Whisk-Auth": "s3cr3"}).status_code == 401
    assert api.client.get(f"{W}/guarded.json", headers={"X-Require-Whisk-Auth": "s3cr3t"}).status_code == 200


def test_require_whisk_auth_true_needs_valid_credentials(api):
    web(api, "guarded", ECHO, annotations=[("require-whisk-auth", True)])
    assert api.client.get(f"{W}/guarded.json").status_code == 401
    r = api.client.get(f"{W}/guarded.json", headers=api.auth("other"))
    assert r.status_code == 200
    assert r.json()["__ow_user"] == "other"
    bad = {"Authorization": "Basic " + base64.b64encode(b"nobody:" + b"0" * 64).decode()}
    assert api.client.get(f"{W}/guarded.json", headers=bad).status_code == 401


def test_web_body_limits(api):
    web(api, "echo", ECHO)
    r = api.client.post(f"{W}/echo.json", content=b"x" * (1024 * 1024 + 1), headers={"Content-Type": "text/plain"})
    assert r.status_code == 413
    r = api.client.post(f"{W}/echo.json", content=b"{bad", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_timing_probe_of_require_whisk_auth_meets_a_constant_time_compare(api, monkeypatch):
    """Every check of X-Require-Whisk-Auth goes through hmac.compare_digest (no early exit on a prefix)."""
    web(api, "guarded", ECHO, annotations=[("require-whisk-auth", "s3cr3t-value")])
    seen = []
    original = hmac.compare_digest

    def recording(a, b):
        if b == b"s3cr3t-value":
            seen.append((a, b))
        return original(a, b)

    monkeypatch.setattr(web_route.hmac, "compare_digest", recording)
    for probe in ("s", "s3", "s3cr3t-valu", "x" * 12, "s3cr3t-value"):
        api.client.get(f"{W}/guarded.json", headers={"X-Require-Whisk-Auth": probe})
    assert [a for a, _ in seen] == [p.encode() for p in ("s", "s3", "s3cr3t-valu", "x" * 12, "s3cr3t-value")]
    assert all(b == b"s3cr3t-value" for _, b in seen)
