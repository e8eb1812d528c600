"""JWT bearer authentication: audience, expiry, alg none, wrong key, another issuer's key, scopes."""

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.testclient import TestClient

from stockade.api.app import Platform, create_app
from stockade.config import Settings
from stockade.store import open_sqlite_store
from stockade.testing import InProcessRunner

ISSUER = "https://idp.test"
NS = "/api/v1/namespaces/guest"


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(key, kid):
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return {"keys": [jwk]}


@pytest.fixture
def jwt_api(tmp_path):
    key, other = rsa_key(), rsa_key()
    (tmp_path / "jwks.json").write_text(json.dumps(jwks(key, "k1")))
    (tmp_path / "other-jwks.json").write_text(json.dumps(jwks(other, "o1")))
    issuers = [
        {
            "issuer": ISSUER,
            "audiences": ["stockade"],
            "namespace": "guest",
            "role": "invoker",
            "jwks_file": str(tmp_path / "jwks.json"),
        },
        {
            "issuer": "https://other.test",
            "audiences": ["stockade"],
            "namespace": "other",
            "role": "owner",
            "jwks_file": str(tmp_path / "other-jwks.json"),
        },
    ]
    (tmp_path / "issuers.json").write_text(json.dumps(issuers))
    settings = Settings(data_dir=tmp_path)
    from dataclasses import replace

    settings = replace(settings, auth=replace(settings.auth, jwt_issuers_file=str(tmp_path / "issuers.json")))
    keys = {}

    async def boot(services):
        keys["guest"] = (await services.namespaces.create("guest")).token
        await services.namespaces.create("other")

    platform = Platform(
        settings=settings, store=open_sqlite_store(tmp_path / "db"), runner=InProcessRunner(), on_open=[boot]
    )
    with TestClient(create_app(platform)) as client:
        import base64

        owner = {"Authorization": "Basic " + base64.b64encode(keys["guest"].encode()).decode()}
        for name in ("a", "b"):
            body = {"exec": {"kind": "python:3", "code": f"def main(x):\n    return {{'name': '{name}'}}\n"}}
            assert client.put(f"{NS}/actions/{name}", headers=owner, json=body).status_code == 200
        yield client, key, other


def token(key, kid="k1", **claims):
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": "stockade",
        "sub": "svc-1",
        "exp": now + 300,
        "iat": now,
        "scope": "invoke:/guest/a",
    }
    payload.update(claims)
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def call(client, tok, action="a"):
    return client.post(f"{NS}/actions/{action}?blocking=true", headers={"Authorization": f"Bearer {tok}"}, json={})


def test_valid_token_invokes_only_its_scope(jwt_api):
    client, key, _ = jwt_api
    good = token(key)
    assert call(client, good).status_code == 200
    assert call(client, good, "b").status_code == 403
    assert client.put(f"{NS}/actions/c", headers={"Authorization": f"Bearer {good}"}, json={}).status_code == 403


@pytest.mark.parametrize(
    "case",
    [
        "wrong-audience",
        "expired",
        "alg-none",
        "wrong-key",
        "other-issuers-key",
        "unknown-issuer",
        "no-exp",
        "garbage",
        "hs256-with-public-key",
    ],
)
def test_bad_tokens_are_refused(jwt_api, case):
    client, key, other = jwt_api
    if case == "wrong-audience":
        tok = token(key, aud="someone-else")
    elif case == "expired":
        tok = token(key, exp=int(time.time()) - 3600)
    elif case == "alg-none":
        tok = jwt.encode(
            {"iss": ISSUER, "aud": "stockade", "sub": "x", "exp": int(time.time()) + 60, "scope": "invoke:/guest/a"},
            None,
            algorithm="none",
        )
    elif case == "wrong-key":
        tok = token(rsa_key())
    elif case == "other-issuers-key":
        tok = token(other, kid="o1")
    elif case == "unknown-issuer":
        tok = token(key, iss="https://evil.test")
    elif case == "no-exp":
        now = int(time.time())
        tok = jwt.encode(
            {"iss": ISSUER, "aud": "stockade", "sub": "x", "iat": now, "scope": "invoke:/guest/a"},
            key,
            algorithm="RS256",
            headers={"kid": "k1"},
        )
    elif case == "hs256-with-public-key":
        import base64 as b64
        import hashlib
        import hmac as hm

        header = b64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "k1"}).encode()).rstrip(b"=")
        body = b64.urlsafe_b64encode(
            json.dumps({"iss": ISSUER, "aud": "stockade", "sub": "x", "exp": int(time.time()) + 60}).encode()
        ).rstrip(b"=")
        pem = RSAAlgorithm.to_jwk(key.public_key()).encode()
        sig = b64.urlsafe_b64encode(hm.new(pem, header + b"." + body, hashlib.sha256).digest()).rstrip(b"=")
        tok = (header + b"." + body + b"." + sig).decode()
    else:
        tok = "not.a.jwt"
    assert call(client, tok).status_code == 401
