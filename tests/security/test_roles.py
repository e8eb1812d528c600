"""The role × permission matrix, every cell, through the REST API; privilege escalation attempts."""

import base64

import pytest

from stockade.domain import Identity
from stockade.security.authz import ROLES, Permission, Role, load_role_matrix

NS = "/api/v1/namespaces/guest"
CODE = {"exec": {"kind": "python:3", "code": "def main(a):\n    return {'ok': True}\n"}}


def basic(token):
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


@pytest.fixture
def keyed(api):
    """The api fixture plus one key per role in namespace guest (the bootstrap key is the owner)."""
    assert api.put(f"{NS}/actions/a", json=CODE).status_code == 200
    keys = {"owner": api.keys["guest"]}
    for role in ROLES:
        if role == "owner":
            continue
        r = api.post(f"{NS}/keys", json={"subject": f"{role}-user", "role": role})
        assert r.status_code == 200, r.text
        keys[role] = r.json()["key"]
    api.role_keys = keys
    return api


def attempt(api, role, permission):
    """One representative request per permission; returns the status code."""
    h = basic(api.role_keys[role])
    c = api.client
    match permission:
        case Permission.READ:
            return c.get(f"{NS}/actions", headers=h).status_code
        case Permission.READ_CODE:
            return c.get(f"{NS}/actions/a?code=true", headers=h).status_code
        case Permission.WRITE:
            return c.put(f"{NS}/actions/new-{role}", headers=h, json=CODE).status_code
        case Permission.INVOKE:
            return c.post(f"{NS}/actions/a?blocking=true", headers=h, json={}).status_code
        case Permission.READ_ACTIVATIONS:
            return c.get(f"{NS}/activations", headers=h).status_code
        case Permission.SECRETS:
            return c.put(f"{NS}/secrets/s-{role}", headers=h, json={"value": "v"}).status_code
        case Permission.ROLES:
            return c.get(f"{NS}/roles", headers=h).status_code
        case Permission.AUDIT:
            return c.get(f"{NS}/audit", headers=h).status_code
        case Permission.MONITOR:
            return c.get(f"{NS}/events", headers=h).status_code
    raise AssertionError(permission)


MATRIX = load_role_matrix()
CELLS = [(role, perm) for role in ROLES for perm in Permission]


@pytest.mark.parametrize(("role", "permission"), CELLS, ids=[f"{r}-{p.value}" for r, p in CELLS])
def test_role_permission_cell(keyed, role, permission):
    """Each role may do exactly what the matrix grants, and gets OpenWhisk's 403 otherwise."""
    allowed = permission in MATRIX.grants[Role(role)]
    status = attempt(keyed, role, permission)
    if allowed:
        assert status == 200, (role, permission, status)
    else:
        assert status == 403, (role, permission, status)


def test_matrix_is_what_the_issue_asks():
    grants = {r.value: {p.value for p in MATRIX.grants[r]} for r in Role}
    assert "read_code" not in grants["viewer"]
    assert "secrets" not in grants["viewer"]
    assert grants["auditor"] >= {"audit"}
    assert "write" not in grants["invoker"]
    assert "roles" in grants["owner"]
    assert all("read" in g for g in grants.values())


@pytest.mark.parametrize("bad", ['{"permissions": {}, "roles": {}}', '{"permissions": {"read": ""}, "roles": {}}'])
def test_invalid_role_files_are_refused(bad):
    with pytest.raises(ValueError):
        load_role_matrix(bad)


def test_developer_cannot_grant_itself_owner(keyed):
    h = basic(keyed.role_keys["developer"])
    r = keyed.client.put(f"{NS}/roles/developer-user", headers=h, json={"role": "owner"})
    assert r.status_code == 403
    r = keyed.client.post(f"{NS}/keys", headers=h, json={"subject": "x", "role": "owner"})
    assert r.status_code == 403
    roles = {b["subject"]: b["role"] for b in keyed.get(f"{NS}/roles").json()}
    assert roles["developer-user"] == "developer"


def test_viewer_cannot_read_code_but_can_list(keyed):
    h = basic(keyed.role_keys["viewer"])
    assert keyed.client.get(f"{NS}/actions/a", headers=h).status_code == 403
    assert keyed.client.get(f"{NS}/actions/a?code=false", headers=h).status_code == 200


def test_invoker_cannot_deploy_or_delete(keyed):
    h = basic(keyed.role_keys["invoker"])
    assert keyed.client.put(f"{NS}/actions/a?overwrite=true", headers=h, json=CODE).status_code == 403
    assert keyed.client.delete(f"{NS}/actions/a", headers=h).status_code == 403
    assert keyed.client.put(f"{NS}/triggers/t", headers=h, json={}).status_code == 403


def test_protected_namespace_only_deployers_write(keyed):
    assert keyed.put(f"{NS}/policy", json={"protected": True}).status_code == 200
    assert keyed.put(f"{NS}/actions/by-owner", json=CODE).status_code == 403
    dev = basic(keyed.role_keys["developer"])
    assert keyed.client.put(f"{NS}/actions/by-dev", headers=dev, json=CODE).status_code == 403
    dep = basic(keyed.role_keys["deployer"])
    assert keyed.client.put(f"{NS}/actions/by-deployer", headers=dep, json=CODE).status_code == 200
    # invoking still works for those allowed to invoke
    assert keyed.post(f"{NS}/actions/a?blocking=true", json={}).status_code == 200
    assert keyed.put(f"{NS}/policy", json={"protected": False}).status_code == 200
    assert keyed.put(f"{NS}/actions/by-owner", json=CODE).status_code == 200


def test_revoked_key_stops_working_at_once(keyed):
    keys = keyed.get(f"{NS}/keys").json()
    dev_uuid = next(k["uuid"] for k in keys if k["subject"] == "developer-user")
    h = basic(keyed.role_keys["developer"])
    assert keyed.client.get(f"{NS}/actions", headers=h).status_code == 200
    assert keyed.delete(f"{NS}/keys/{dev_uuid}").status_code == 200
    assert keyed.client.get(f"{NS}/actions", headers=h).status_code == 401


def test_last_owner_cannot_be_removed(keyed):
    r = keyed.delete(f"{NS}/roles/guest")
    assert r.status_code == 409
    assert keyed.put(f"{NS}/roles/guest", json={"role": "viewer"}).status_code == 409


def test_cross_namespace_access_leaks_nothing(keyed):
    other = basic(keyed.keys["other"])
    for path in ("/actions/a", "/actions/missing", "/roles", "/audit", "/keys", "/secrets"):
        r = keyed.client.get(f"{NS}{path}", headers=other)
        assert r.status_code == 403, path


def test_access_service_identity_kinds():
    """Web-action owners may read and invoke only in their namespace."""
    from stockade.services.access import _scope_matches

    assert _scope_matches("invoke:/ns/pkg/*", "/ns/pkg/a")
    assert not _scope_matches("invoke:/ns/pkg/*", "/ns/other/a")
    assert not _scope_matches("invoke:/ns/a", "")
    assert Identity("s", "ns", "", kind="owner").scope is None


def test_only_writers_get_transfer_tokens(keyed):
    """``?sealed=true`` (what export uses) needs WRITE; readers keep seeing fingerprints only."""
    keyed.put(f"{NS}/actions/tok", json={**CODE, "parameters": [{"key": "k", "value": "v"}]})
    keyed.put(f"{NS}/packages/tokp", json={"parameters": [{"key": "k", "value": "v"}]})
    keyed.put(f"{NS}/triggers/tokt", json={"parameters": [{"key": "k", "value": "v"}]})
    for role in ("viewer", "invoker", "auditor"):
        h = basic(keyed.role_keys[role])
        for path in (
            f"{NS}/actions/tok?code=false&sealed=true",
            f"{NS}/packages/tokp?sealed=true",
            f"{NS}/triggers/tokt?sealed=true",
        ):
            r = keyed.client.get(path, headers=h)
            assert r.status_code == 403, (role, path, r.status_code)
            assert "sealed" not in r.text
    h = basic(keyed.role_keys["deployer"])
    r = keyed.client.get(f"{NS}/triggers/tokt?sealed=true", headers=h)
    assert r.status_code == 200
    assert r.json()["parameters"][0]["sealed"]
    owner = keyed.get(f"{NS}/actions/tok?sealed=true").json()["parameters"][0]
    assert owner["sealed"]
