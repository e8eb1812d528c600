"""Gateway fixtures: an echo action, routes made through the apis resource, raw-path requests, JWTs."""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import replace

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from stockade.config import Settings

ISSUER = "https://idp.gateway.test"
ECHO = (
    "def main(a):\n"
    "    out = {k: v for k, v in a.items() if k != '__ow_headers'}\n"
    "    out['headers'] = a.get('__ow_headers', {})\n"
    "    return out\n"
)


class Gateway:
    """Drives one test platform: actions, routes, and calls through /api/gw/guest."""

    def __init__(self, api):
        self.api = api

    def action(self, name="echo", code=ECHO, annotations=()):
        body = {
            "exec": {"kind": "python:3", "code": code},
            "annotations": [{"key": k, "value": v} for k, v in annotations],
        }
        r = self.api.put(f"/api/v1/namespaces/_/actions/{name}", json=body)
        assert r.status_code == 200, r.text

    def route(self, base="/shop", rel="/items", verb="GET", action="echo", *, status=200, **options):
        body = {"basePath": base, "relPath": rel, "verb": verb, "action": action, **options}
        r = self.api.put("/api/v1/namespaces/_/apis?overwrite=true", json=body)
        assert r.status_code == status, r.text
        return r.json()

    def call(self, method, path, **kw):
        return self.api.client.request(method, f"/api/gw/guest{path}", **kw)

    def runs(self, name="echo"):
        return sum(1 for fqn, _params, _env in self.api.runner.calls if fqn == f"/guest/{name}")

    def raw(self, raw_path, method="GET"):
        """A request whose path reaches the app exactly as written (httpx would remove '..')."""
        client = self.api.client
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": urllib.parse.unquote(raw_path),
            "raw_path": raw_path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        messages = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            messages.append(message)

        client.portal.call(client.app, scope, receive, send)
        start = next(m for m in messages if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        return start["status"], json.loads(body) if body else None


@pytest.fixture
def make_gw():
    """Wrap a platform (from ``api_factory``) with an echo action."""

    def build(api):
        gateway = Gateway(api)
        gateway.action()
        return gateway

    return build


@pytest.fixture
def gw(api, make_gw):
    return make_gw(api)


class Tokens:
    def __init__(self, key, other_key):
        self.key = key
        self.other_key = other_key

    def make(self, scope="", *, key=None, issuer=ISSUER, **claims):
        now = int(time.time())
        payload = {"iss": issuer, "aud": "stockade", "sub": "alice", "iat": now, "exp": now + 300, "scope": scope}
        payload.update(claims)
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": "k1"})


def _jwks(key):
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    return {"keys": [jwk]}


@pytest.fixture
def jwt_gw(api_factory, tmp_path):
    """A platform trusting one issuer for namespace guest and another for namespace other."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "jwks.json").write_text(json.dumps(_jwks(key)))
    (tmp_path / "other.json").write_text(json.dumps(_jwks(other)))
    issuers = [
        {"issuer": ISSUER, "audiences": ["stockade"], "namespace": "guest", "jwks_file": str(tmp_path / "jwks.json")},
        {
            "issuer": "https://idp.other.test",
            "audiences": ["stockade"],
            "namespace": "other",
            "jwks_file": str(tmp_path / "other.json"),
        },
    ]
    (tmp_path / "issuers.json").write_text(json.dumps(issuers))
    settings = Settings(data_dir=tmp_path)
    settings = replace(settings, auth=replace(settings.auth, jwt_issuers_file=str(tmp_path / "issuers.json")))
    gateway = Gateway(api_factory(settings))
    gateway.action()
    return gateway, Tokens(key, other)
