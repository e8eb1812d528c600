"""Threat: a JWT without the route's scope, from another tenant's issuer, expired, or not a JWT at all."""

from __future__ import annotations

import time


def test_token_without_the_required_scope_is_forbidden(jwt_gw):
    gw, tokens = jwt_gw
    gw.route(auth="jwt", scopes=["items:write", "items:read"])
    for scope in ("", "items:read", "items:writer items:read", "ITEMS:WRITE items:read"):
        r = gw.call("GET", "/shop/items", headers={"Authorization": f"Bearer {tokens.make(scope)}"})
        assert r.status_code == 403, scope
        assert r.json()["error"] == "The supplied authentication is not authorized to access this resource."
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert gw.runs() == 0
    ok = gw.call("GET", "/shop/items", headers={"Authorization": f"Bearer {tokens.make('items:read items:write')}"})
    assert ok.status_code == 200


def test_another_tenants_issuer_cannot_call(jwt_gw):
    """The other namespace's trusted issuer signs a token with every scope: still not this API's caller."""
    gw, tokens = jwt_gw
    gw.route(auth="jwt", scopes=["items:read"])
    foreign = tokens.make("items:read", key=tokens.other_key, issuer="https://idp.other.test")
    r = gw.call("GET", "/shop/items", headers={"Authorization": f"Bearer {foreign}"})
    assert r.status_code == 403
    assert gw.runs() == 0


def test_invalid_tokens_and_other_credentials_are_401(jwt_gw):
    gw, tokens = jwt_gw
    gw.route(auth="jwt", scopes=["items:read"])
    expired = tokens.make("items:read", exp=int(time.time()) - 3600)
    forged = tokens.make("items:read", key=tokens.other_key)
    for headers in (
        {},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": "Bearer not-a-jwt"},
        gw.api.auth("guest"),  # a valid API key is not a JWT
    ):
        r = gw.call("GET", "/shop/items", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert gw.runs() == 0
