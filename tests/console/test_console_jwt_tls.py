"""Console sessions from a JWT (capped at the token's expiry, roles from its issuer) and over TLS
(Secure, ``__Host-`` cookie)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.testclient import TestClient

from stockade.config import Settings

from .conftest import HTML, Console, make_console

ISSUER = "https://idp.console.test"


@pytest.fixture
def jwt_console(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    issuers = [
        {
            "issuer": ISSUER,
            "audiences": ["stockade"],
            "namespace": "guest",
            "role": "viewer",
            "jwks_file": str(tmp_path / "jwks.json"),
        }
    ]
    (tmp_path / "issuers.json").write_text(json.dumps(issuers))
    base = Settings(data_dir=tmp_path)
    settings = replace(base, auth=replace(base.auth, jwt_issuers_file=str(tmp_path / "issuers.json")))
    app, keys, clock = make_console(tmp_path, settings)
    clock.now = int(time.time() * 1000)
    with TestClient(app) as client:
        yield Console(client, keys, clock, app), key


def _token(key, lifetime_s: int) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "stockade", "sub": "<b>alice</b>", "iat": now, "exp": now + lifetime_s}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def test_a_jwt_signs_in_with_its_issuers_role_until_it_expires(jwt_console):
    console, key = jwt_console
    token = _token(key, 120)
    assert console.sign_in(token).status_code == 303
    page = console.client.get("/console/ns/guest", headers=HTML)
    assert page.status_code == 200
    assert "&lt;b&gt;alice&lt;/b&gt;" in page.text
    # Whatever the API answers this bearer, the console answers its session.
    bearer = {"Authorization": f"Bearer {token}"}
    for page_path, api_path in [
        ("/console/ns/guest", "/api/v1/namespaces/guest/actions"),
        ("/console/ns/guest/activations", "/api/v1/namespaces/guest/activations"),
        ("/console/ns/guest/audit", "/api/v1/namespaces/guest/audit"),
        ("/console/ns/guest/events", "/api/v1/namespaces/guest/events"),
        ("/console/ns/other", "/api/v1/namespaces/other/actions"),
    ]:
        expected = console.client.get(api_path, headers=bearer).status_code
        assert console.client.get(page_path).status_code == expected, page_path
    assert console.client.get("/console/ns/guest/audit").status_code == 403
    # The session ends with the token, before the console's own 15 minutes.
    console.clock.advance(121_000)
    assert console.client.get("/console/ns/guest").status_code == 401


def test_forged_and_expired_jwts_do_not_sign_in(jwt_console):
    console, key = jwt_console
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert console.sign_in(_token(other, 120)).status_code == 401
    assert console.sign_in(_token(key, -10)).status_code == 401
    assert console.sign_in(_token(key, 2)).status_code == 401  # too short-lived to open a session


def test_over_tls_the_cookie_is_secure_and_host_prefixed(tmp_path):
    app, keys, clock = make_console(tmp_path)
    with TestClient(app, base_url="https://testserver") as client:
        console = Console(client, keys, clock, app)
        r = console.sign_in(keys["guest"])
        assert r.status_code == 303
        cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("__Host-stockade_console="))
        assert "secure" in cookie.lower()
        assert "path=/;" in cookie.lower() or cookie.lower().endswith("path=/")
        assert console.client.get("/console/ns/guest").status_code == 200
