"""`stockade admin`: host-side operator commands on a real store and key files."""

import os
import subprocess
import sys


def admin(tmp_path, *args, check=True):
    env = {**os.environ, "STOCKADE_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "stockade.cli", "admin", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def test_namespace_and_key_lifecycle(tmp_path):
    out = admin(tmp_path, "namespace-create", "team", "--owner", "alice").stdout
    assert "AUTH=" in out
    alice_uuid = out.split("AUTH=")[1].split(":")[0]
    out = admin(tmp_path, "key-create", "team", "ci-bot", "--role", "deployer").stdout
    bot_uuid = out.split("AUTH=")[1].split(":")[0]
    assert admin(tmp_path, "key-create", "team", "stranger", check=False).returncode != 0
    listing = admin(tmp_path, "key-list", "--namespace", "team").stdout
    assert alice_uuid in listing
    assert bot_uuid in listing
    rotated = admin(tmp_path, "key-rotate", bot_uuid).stdout
    assert f"{bot_uuid} revoked" in rotated
    assert "revoked" in admin(tmp_path, "key-list", "--namespace", "team").stdout
    assert admin(tmp_path, "key-revoke", bot_uuid, check=False).returncode != 0
    assert "intact" in admin(tmp_path, "audit-verify").stdout or "ok:" in admin(tmp_path, "audit-verify").stdout


def test_key_rotation_commands_run_on_an_existing_store(tmp_path):
    admin(tmp_path, "namespace-create", "team")
    assert "ok: master key" in admin(tmp_path, "rotate-master-key").stdout
    assert "ok: data key" in admin(tmp_path, "rotate-data-key", "team").stdout
    assert admin(tmp_path, "rotate-data-key", "nobody", check=False).returncode != 0
    os.chmod(tmp_path / "master.key", 0o644)
    refused = admin(tmp_path, "key-list", check=False)
    assert refused.returncode != 0
    assert "group or others" in refused.stderr
