"""`stockade role|key|audit|policy` and `--sign`."""

from __future__ import annotations

from stockade.signing import SCHEME, parse_authorization

NS = "/api/v1/namespaces/_"


def test_role_grant_list_revoke(cli, api):
    cli("role", "grant", "alice", "developer")
    assert (api.last.method, api.last.path, api.last.body) == ("PUT", f"{NS}/roles/alice", {"role": "developer"})
    api.reply(200, [{"subject": "alice", "role": "developer", "grantedBy": "guest", "created": 0}])
    assert "alice" in cli("role", "list").out
    cli("role", "revoke", "alice", "--namespace", "team")
    assert (api.last.method, api.last.path) == ("DELETE", "/api/v1/namespaces/team/roles/alice")
    assert cli("role", "grant", "alice", "emperor").code == 2


def test_key_create_shows_the_secret_once(cli, api):
    api.reply(200, {"uuid": "u", "key": "u:s3cret", "subject": "ci", "namespace": "guest"})
    result = cli("key", "create", "ci", "--role", "deployer")
    assert api.last.body == {"subject": "ci", "role": "deployer"}
    assert "AUTH=u:s3cret" in result.out
    cli("key", "revoke", "u")
    assert (api.last.method, api.last.path) == ("DELETE", f"{NS}/keys/u")


def test_audit_verify_exit_code(cli, api):
    api.reply(200, {"ok": True, "entries": 3, "head": {"seq": 3, "mac": "ab"}, "problems": []})
    assert cli("audit", "verify").code == 0
    api.reply(200, {"ok": False, "entries": 3, "head": {"seq": 3, "mac": "ab"}, "problems": ["entry 2 is missing"]})
    result = cli("audit", "verify")
    assert result.code == 1
    assert "entry 2 is missing" in result.out


def test_audit_export_pages(cli, api):
    api.reply(200, [{"seq": i, "action": "x"} for i in range(1, 1001)])
    api.reply(200, [{"seq": 1001, "action": "y"}])
    result = cli("audit", "export")
    assert len(result.out.splitlines()) == 1001
    assert api.last.query == {"since": "1000", "limit": "1000"}


def test_policy_protect_and_lint(cli, api):
    cli("policy", "protect", "on")
    assert api.last.body == {"protected": True}
    api.reply(200, {"namespace": "guest", "actions": [{"action": "/guest/a", "findings": ["invoke grant '*' ..."]}]})
    result = cli("policy", "lint")
    assert result.code == 1
    assert "/guest/a: invoke grant" in result.out


def test_sign_sends_a_signature_not_the_key(cli, api):
    cli("--sign", "action", "list")
    header = api.last.headers["authorization"]
    assert header.startswith(SCHEME)
    fields = parse_authorization(header)
    assert fields is not None
    assert "Basic" not in header
