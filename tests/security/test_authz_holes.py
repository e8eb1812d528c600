"""Issue 11's defects, one attack each: permissions, not namespaces; secrets wired only by holders
of SECRETS; malformed credentials are counted 401s; unknown key uuids cost what known ones do."""

import base64
import time
import uuid

import pytest
from starlette.testclient import TestClient

from conftest import make_api
from stockade.errors import UnauthenticatedError
from stockade.services import SignedParts

NS = "/api/v1/namespaces"
ADV = "/api/v1/admin/advisories"
ADVISORY = {
    "id": "GHSA-test-authz",
    "modified": "2024-01-01T00:00:00Z",
    "summary": "test",
    "affected": [
        {
            "package": {"ecosystem": "npm", "name": "left-pad"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}],
        }
    ],
    "database_specific": {"severity": "HIGH"},
}
USES_SECRET = "def main(a):\n    import os\n    return {'leak': os.environ.get('DB_PASSWORD', '')}\n"


def basic(token):
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


@pytest.fixture
def roles(api):
    """Keys of every non-owner role in guest (the platform's administrative namespace)."""
    keys = {"owner": api.keys["guest"]}
    for role in ("developer", "deployer", "viewer", "invoker", "auditor"):
        r = api.post(f"{NS}/guest/keys", json={"subject": f"{role}-user", "role": role})
        assert r.status_code == 200, r.text
        keys[role] = r.json()["key"]
    api.role_keys = keys
    return api


def audit_entries(api, chain):
    services = api.client.app.state.services
    return [r.entry for r in api.client.portal.call(services.audit.entries, chain)]


@pytest.mark.parametrize("role", ["viewer", "developer", "deployer", "invoker", "auditor"])
def test_non_owner_of_the_admin_namespace_cannot_change_another_tenants_scan_policy(roles, role):
    h = basic(roles.role_keys[role])
    off = {"block": [], "warn": []}
    r = roles.client.put(f"{NS}/other/scanpolicy", headers=h, json=off)
    assert r.status_code == 403, r.text
    assert roles.client.delete(f"{NS}/other/scanpolicy", headers=h).status_code == 403
    assert roles.client.put(f"{NS}/guest/scanpolicy", headers=h, json=off).status_code == 403
    # The gate of the other tenant is untouched.
    assert roles.get(f"{NS}/other/scanpolicy", ns="other").json()["block"] == ["critical", "high"]


@pytest.mark.parametrize("role", ["viewer", "developer", "deployer", "invoker", "auditor"])
def test_non_owner_of_the_admin_namespace_cannot_import_advisories(roles, role):
    h = basic(roles.role_keys[role])
    assert roles.client.post(ADV, headers=h, json={"advisories": [ADVISORY]}).status_code == 403
    assert roles.client.get(ADV, headers=h).status_code == 403


def test_platform_owner_changes_are_audited(roles):
    r = roles.put(f"{NS}/other/scanpolicy", json={"block": ["critical"], "warn": []})
    assert r.status_code == 200, r.text
    assert roles.post(ADV, json={"advisories": [ADVISORY]}).status_code == 200
    changed = [e for e in audit_entries(roles, "other") if e["action"] == "scanpolicy.changed"]
    assert changed
    assert changed[0]["actor"] == "guest"
    assert changed[0]["details"]["block"] == ["critical"]
    imported = [e for e in audit_entries(roles, "") if e["action"] == "advisories.imported"]
    assert imported
    assert imported[0]["details"]["created"] == ["GHSA-test-authz"]


def test_developer_cannot_wire_a_secret_into_an_action(roles):
    assert roles.put(f"{NS}/guest/secrets/db", json={"value": "hunter2-very-secret"}).status_code == 200
    body = {
        "exec": {"kind": "python:3", "code": USES_SECRET},
        "annotations": [{"key": "secrets", "value": {"DB_PASSWORD": "db"}}],
    }
    dev = basic(roles.role_keys["developer"])
    r = roles.client.put(f"{NS}/guest/actions/leak", headers=dev, json=body)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "The supplied authentication is not authorized to access 'guest/secrets'."
    assert roles.get(f"{NS}/guest/actions/leak").status_code == 404
    refused = [e for e in audit_entries(roles, "guest") if e["action"] == "secret.wiring_refused"]
    assert refused
    assert refused[0]["actor"] == "developer-user"
    assert refused[0]["details"] == {"secrets": ["db"]}
    # The deployer (SECRETS) may wire it; the wiring is audited.
    dep = basic(roles.role_keys["deployer"])
    assert roles.client.put(f"{NS}/guest/actions/leak", headers=dep, json=body).status_code == 200
    wired = [e for e in audit_entries(roles, "guest") if e["action"] == "secret.wired"]
    assert wired
    assert wired[0]["actor"] == "deployer-user"
    # A developer may not replace the code of an action that already receives the secret.
    steal = {"exec": {"kind": "python:3", "code": USES_SECRET + "# v2\n"}}
    r = roles.client.put(f"{NS}/guest/actions/leak?overwrite=true", headers=dev, json=steal)
    assert r.status_code == 403


MALFORMED = [
    b"Basic \xff\xfe\xfd",  # non-ASCII bytes in the header
    b"Basic " + base64.b64encode(b"\xff\xfe:\xfd\xfc"),  # base64 of non-UTF-8 bytes
    b"Basic !!!not-base64!!!",
    b"Basic " + "é".encode(),
    b"Stockade-HMAC-SHA256 Credential=\xff, Timestamp=1, Nonce=n, Signature=s",
    b"Basic",
    b"Bearer",
    b"Digest abc",
]


@pytest.mark.parametrize("header", MALFORMED, ids=[repr(h[:24]) for h in MALFORMED])
def test_malformed_authorization_is_a_401_never_a_500(tmp_path, header):
    app, _keys, _runner = make_api(tmp_path)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get(f"{NS}/guest/actions", headers=[(b"authorization", header)])
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "The supplied authentication is invalid"
        assert set(r.json()) == {"error", "code"}


def test_malformed_authorization_counts_toward_lockout(api_factory, make_settings):
    from dataclasses import replace

    settings = make_settings()
    settings = replace(
        settings,
        auth=replace(settings.auth, slow_after_failures=100, lockout_after_failures=3, source_lockout_after_failures=4),
    )
    api = api_factory(settings)
    for header in MALFORMED[:4]:
        r = api.client.get(f"{NS}/guest/actions", headers=[(b"authorization", header)])
        assert r.status_code == 401
    locked = api.client.get(f"{NS}/guest/actions", headers=api.auth())
    assert locked.status_code == 429


def test_unknown_key_uuids_cost_the_same_store_work_as_known_ones(api):
    """A cache hit for known uuids and a database read for unknown ones told which uuids exist."""
    services = api.client.app.state.services
    store = services.store
    reads = []
    for name in ("get_key", "list_keys", "get_key_hmac", "list_key_hmacs"):
        original = getattr(store, name)

        def counting(*a, _name=name, _original=original, **kw):
            reads.append(_name)
            return _original(*a, **kw)

        setattr(store, name, counting)
    known = api.keys["guest"].split(":")[0]

    sources = iter(range(1_000_000))

    def attempt(user):
        header = "Basic " + base64.b64encode(f"{user}:{'0' * 64}".encode()).decode()
        source = f"2001:db8::{next(sources):x}"  # one address each: no lockout, no slowing
        with pytest.raises(UnauthenticatedError):
            api.client.portal.call(lambda: services.auth.authenticate(header, source=source))

    attempt(known)  # warm whatever is cached
    reads.clear()
    for _ in range(20):
        attempt(known)
    known_reads = len(reads)
    reads.clear()
    for _ in range(20):
        attempt(str(uuid.uuid4()))
    # No read per uuid for either (at most one reload of the whole index when the epoch moved).
    assert known_reads <= 2
    assert len(reads) <= 2
    assert "get_key" not in reads

    # Signed requests: a bad signature costs no store read either way.
    def signed_attempt(user):
        header = f"Stockade-HMAC-SHA256 Credential={user}, Timestamp={int(time.time())}, Nonce={uuid.uuid4().hex}, Signature=00"
        source = f"2001:db8::{next(sources):x}"
        parts = SignedParts("GET", "/api/v1/namespaces", "", b"")
        with pytest.raises(UnauthenticatedError):
            api.client.portal.call(lambda: services.auth.authenticate(header, source=source, signed=parts))

    signed_attempt(known)
    reads.clear()
    for _ in range(10):
        signed_attempt(known)
        signed_attempt(str(uuid.uuid4()))
    assert "get_key_hmac" not in reads
    assert len(reads) <= 2


SHELL_PY = """\
import subprocess


def main(args):
    return {"out": subprocess.check_output(f"echo {args['s']}", shell=True).decode()}
"""


def test_accept_risk_is_audited_with_reason_subject_and_findings(api):
    body = {"exec": {"kind": "python:3", "code": SHELL_PY}}
    assert api.put(f"{NS}/guest/actions/risky", json=body).status_code != 200  # blocked without a reason
    r = api.put(f"{NS}/guest/actions/risky?acceptRisk=input%20is%20validated%20upstream", json=body)
    assert r.status_code == 200, r.text
    [entry] = [e for e in audit_entries(api, "guest") if e["action"] == "deploy.risk_accepted"]
    assert entry["actor"] == "guest"
    assert entry["details"]["reason"] == "input is validated upstream"
    assert entry["details"]["findings"]
    assert all(":" in f for f in entry["details"]["findings"])  # "rule file:line" of each finding
    verdict = api.get(f"{NS}/guest/audit/verify").json()
    assert verdict["ok"] is True


def test_rest_key_creation_is_audited_without_the_secret(api):
    r = api.post(f"{NS}/guest/keys", json={"subject": "ci", "role": "deployer"})
    assert r.status_code == 200
    key = r.json()["key"]
    [entry] = [
        e for e in audit_entries(api, "guest") if e["action"] == "key.created" and e["details"]["subject"] == "ci"
    ]
    assert entry["details"] == {"uuid": key.split(":")[0], "subject": "ci", "role": "deployer"}
    assert entry["actor"] == "guest"
    assert key.split(":")[1] not in str(audit_entries(api, "guest"))
