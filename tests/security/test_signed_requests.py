"""HMAC-signed API requests: valid signatures work; replays, skew and tampering are refused."""

import time

from stockade.signing import SCHEME, signature_headers

NS = "/api/v1/namespaces/_"


def signed(api, method, path, body=b"", now_s=None, secret=None, query=""):
    uuid, key = api.keys["guest"].split(":", 1)
    headers = signature_headers(uuid, secret or key, method, path, query, body, int(now_s or time.time()))
    headers["Content-Type"] = "application/json"
    url = path + (f"?{query}" if query else "")
    return api.client.request(method, url, headers=headers, content=body), headers


def test_signed_request_is_accepted(api):
    r, _ = signed(api, "GET", f"{NS}/actions", query="limit=5&skip=0")
    assert r.status_code == 200
    body = b'{"exec":{"kind":"python:3","code":"def main(a):\\n    return {}\\n"}}'
    r, _ = signed(api, "PUT", f"{NS}/actions/signed", body)
    assert r.status_code == 200, r.text


def test_replayed_signature_is_refused(api):
    r, headers = signed(api, "GET", f"{NS}/actions")
    assert r.status_code == 200
    again = api.client.get(f"{NS}/actions", headers=headers)
    assert again.status_code == 401


def test_clock_skew_is_refused(api):
    r, _ = signed(api, "GET", f"{NS}/actions", now_s=time.time() - 3600)
    assert r.status_code == 401
    r, _ = signed(api, "GET", f"{NS}/actions", now_s=time.time() + 3600)
    assert r.status_code == 401


def test_tampered_request_or_wrong_secret_is_refused(api):
    uuid, key = api.keys["guest"].split(":", 1)
    headers = signature_headers(uuid, key, "GET", f"{NS}/actions", "", b"", int(time.time()))
    assert api.client.get(f"{NS}/triggers", headers=headers).status_code == 401
    r, _ = signed(api, "GET", f"{NS}/actions", secret="0" * 64)
    assert r.status_code == 401
    assert api.client.get(f"{NS}/actions", headers={"Authorization": f"{SCHEME} Credential=x"}).status_code == 401
