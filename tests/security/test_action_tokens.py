"""An action's API access: a short-lived token scoped to its own policy, never the namespace key."""

import base64

from stockade.security import MasterKey, new_key
from stockade.security.tokens import ActionTokens, TokenClaims

NS = "/api/v1/namespaces/guest"
CALLER = {
    "exec": {"kind": "python:3", "code": "def main(a):\n    return {}\n"},
    "annotations": [
        {"key": "provide-api-key", "value": True},
        {"key": "policy", "value": {"invoke": ["/guest/allowed"]}},
    ],
}
TARGET = {"exec": {"kind": "python:3", "code": "def main(a):\n    return {'target': True}\n"}}


def basic(token):
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


def token_of(api):
    assert api.put(f"{NS}/actions/caller", json=CALLER).status_code == 200
    api.put(f"{NS}/actions/allowed", json=TARGET)
    api.put(f"{NS}/actions/forbidden", json=TARGET)
    assert api.post(f"{NS}/actions/caller?blocking=true", json={}).status_code == 200
    return api.runner.calls[-1][2]["__OW_API_KEY"]


def test_token_invokes_what_the_policy_allows_and_nothing_else(api):
    token = token_of(api)
    h = basic(token)
    ok = api.client.post(f"{NS}/actions/allowed?blocking=true&result=true", headers=h, json={})
    assert ok.status_code == 200
    assert ok.json() == {"target": True}
    assert api.client.post(f"{NS}/actions/forbidden?blocking=true", headers=h, json={}).status_code == 403
    assert api.client.put(f"{NS}/actions/evil", headers=h, json=TARGET).status_code == 403
    assert api.client.get(f"{NS}/actions/caller", headers=h).status_code == 403
    assert api.client.get(f"{NS}/secrets", headers=h).status_code == 403
    assert api.client.get(f"{NS}/activations", headers=h).status_code == 403


def test_token_cannot_reach_another_namespace(api):
    token = token_of(api)
    api.put("/api/v1/namespaces/other/actions/allowed", ns="other", json=TARGET)
    r = api.client.post("/api/v1/namespaces/other/actions/allowed?blocking=true", headers=basic(token), json={})
    assert r.status_code == 403


def test_action_without_policy_gets_a_token_that_can_do_nothing(api):
    body = {"exec": CALLER["exec"], "annotations": [{"key": "provide-api-key", "value": True}]}
    api.put(f"{NS}/actions/bare", json=body)
    api.put(f"{NS}/actions/allowed", json=TARGET)
    api.post(f"{NS}/actions/bare?blocking=true", json={})
    token = api.runner.calls[-1][2]["__OW_API_KEY"]
    assert api.client.post(f"{NS}/actions/allowed?blocking=true", headers=basic(token), json={}).status_code == 403


def test_token_replay_after_expiry_is_refused(api):
    ring = api.client.app.state.services.vault.keyring
    tokens = ActionTokens(ring.keys)
    expired = tokens.issue(TokenClaims("guest", "guest", "/guest/caller", ("/guest/allowed",), expires_ms=1))
    api.put(f"{NS}/actions/allowed", json=TARGET)
    r = api.client.post(f"{NS}/actions/allowed?blocking=true", headers=basic(expired), json={})
    assert r.status_code == 401


def test_forged_or_tampered_tokens_are_refused():
    real = ActionTokens([MasterKey(new_key())])
    forger = ActionTokens([MasterKey(new_key())])
    claims = TokenClaims("ns", "s", "/ns/a", ("*",), expires_ms=10**15)
    user, secret = forger.issue(claims).split(":", 1)
    assert real.verify(user, secret, 0) is None
    user, secret = real.issue(claims).split(":", 1)
    assert real.verify(user, secret, 0) == claims
    assert real.verify(user[:-2] + "AA", secret, 0) is None
    assert real.verify(user, secret[:-1] + ("0" if secret[-1] != "0" else "1"), 0) is None
    assert real.verify("not-a-token", secret, 0) is None


def test_policy_lint_flags_broad_grants(api):
    body = {
        "exec": CALLER["exec"],
        "annotations": [
            {"key": "provide-api-key", "value": True},
            {"key": "policy", "value": {"invoke": ["*"], "egress": ["*:443"]}},
        ],
    }
    # The deploy gate blocks wildcard grants too; the risk is accepted here to test the lint.
    assert api.put(f"{NS}/actions/broad?acceptRisk=lint-test", json=body).status_code == 200
    report = api.get(f"{NS}/policy/lint").json()
    findings = {a["action"]: a["findings"] for a in report["actions"]}
    assert any("'*'" in f for f in findings["/guest/broad"])
    assert any("egress" in f for f in findings["/guest/broad"])


def test_policy_is_validated_at_deploy(api):
    for policy in ({"egress": ["no-port.example.com"]}, {"invoke": ["relative/name"]}, {"nonsense": []}, "x"):
        body = {"exec": CALLER["exec"], "annotations": [{"key": "policy", "value": policy}]}
        r = api.put(f"{NS}/actions/bad-policy", json=body)
        assert r.status_code == 400, (policy, r.text)
    assert api.get(f"{NS}/actions/bad-policy").status_code == 404
