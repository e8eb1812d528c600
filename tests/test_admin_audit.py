"""Every operator change made with `stockade admin` writes an audit entry in the right chain, and
the chains still verify. Key creation records uuid, subject and role, never the secret."""

import json

from test_admin import admin


def export(tmp_path, chain=""):
    out = admin(tmp_path, "audit-export", "--namespace", chain).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_operator_commands_are_audited(tmp_path):
    created = admin(tmp_path, "namespace-create", "team", "--owner", "alice").stdout
    alice_token = created.split("AUTH=")[1].strip()
    alice_uuid = alice_token.split(":")[0]
    bot = admin(tmp_path, "key-create", "team", "ci-bot", "--role", "deployer").stdout
    bot_token = bot.split("AUTH=")[1].strip()
    bot_uuid = bot_token.split(":")[0]
    rotated = admin(tmp_path, "key-rotate", bot_uuid).stdout
    new_uuid = rotated.split("AUTH=")[1].split(":")[0]
    admin(tmp_path, "key-revoke", new_uuid)
    admin(tmp_path, "limits-set", "team", "--invocations-per-minute", "7")
    admin(tmp_path, "limits-reset", "team")
    admin(tmp_path, "rotate-data-key", "team")
    admin(tmp_path, "rotate-master-key")

    team = export(tmp_path, "team")
    actions = [e["action"] for e in team]
    for expected in (
        "namespace.created",
        "key.created",
        "admin.role_granted",
        "admin.key_rotated",
        "admin.key_revoked",
        "admin.limits_set",
        "admin.limits_reset",
        "admin.rotate_data_key",
    ):
        assert expected in actions, (expected, actions)
    assert all(e["actor"].startswith("operator") for e in team)
    keys = [e["details"] for e in team if e["action"] == "key.created"]
    assert {(k["uuid"], k["subject"], k["role"]) for k in keys} == {
        (alice_uuid, "alice", "owner"),
        (bot_uuid, "ci-bot", "deployer"),
        (new_uuid, "ci-bot", "deployer"),
    }
    text = json.dumps(team)
    for token in (alice_token, bot_token):
        assert token.split(":")[1] not in text
    assert [e["action"] for e in export(tmp_path)].count("admin.rotate_master_key") == 1
    assert "ok:" in admin(tmp_path, "audit-verify", "--namespace", "team").stdout
    assert "ok:" in admin(tmp_path, "audit-verify").stdout
