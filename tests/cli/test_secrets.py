"""`stockade secret ...` and `action create --secret`: values from stdin or files, never argv or output."""

from __future__ import annotations

import io

SECRETS = "/api/v1/namespaces/_/secrets"


def test_set_reads_stdin_and_puts_with_overwrite(cli, api, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"hunter2\n")))
    api.reply(200, {"name": "db", "version": 1})
    result = cli("secret", "set", "db")
    assert result.code == 0
    assert (api.last.method, api.last.path, api.last.query) == ("PUT", f"{SECRETS}/db", {"overwrite": "true"})
    assert api.last.body == {"value": "hunter2"}
    assert result.out == "ok: set secret db (version 1)\n"
    assert "hunter2" not in result.out + result.err


def test_rotate_reads_a_file(cli, api, tmp_path):
    path = tmp_path / "v"
    path.write_text("new-value")
    api.reply(200, {"name": "db", "version": 2})
    result = cli("secret", "rotate", "db", "--from-file", str(path))
    assert (api.last.method, api.last.path, api.last.body) == ("POST", f"{SECRETS}/db", {"value": "new-value"})
    assert result.out == "ok: rotated secret db (now version 2)\n"


def test_empty_or_missing_values_are_refused(cli, api, monkeypatch, tmp_path):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\n")))
    assert cli("secret", "set", "db").code == 2
    assert cli("secret", "set", "db", "--from-file", str(tmp_path / "missing")).code == 2
    big = tmp_path / "big"
    big.write_bytes(b"x" * (64 * 1024 + 10))
    assert cli("secret", "set", "db", "--from-file", str(big)).code == 2
    assert api.calls == []


def test_list_get_delete(cli, api):
    api.reply(200, [{"name": "db", "version": 3, "created": 0, "fingerprint": "hmac-sha256:ab"}])
    result = cli("secret", "list")
    assert "db" in result.out
    assert "hmac-sha256:ab" in result.out
    api.reply(200, {"name": "db", "version": 3, "versions": [{"version": 3}, {"version": 2}], "recentAccess": []})
    result = cli("secret", "get", "db")
    assert "3, 2" in result.out
    result = cli("secret", "delete", "db")
    assert (api.last.method, api.last.path) == ("DELETE", f"{SECRETS}/db")
    assert result.out == "ok: deleted secret db\n"


def test_action_secret_reference_becomes_an_annotation(cli, api, tmp_path):
    code = tmp_path / "a.py"
    code.write_text("def main(a):\n    return {}\n")
    cli("action", "create", "a", str(code), "--secret", "DB_PASSWORD=db", "--secret", "TOKEN=api-token")
    annotations = {a["key"]: a["value"] for a in api.last.body["annotations"]}
    assert annotations["secrets"] == {"DB_PASSWORD": "db", "TOKEN": "api-token"}
    assert cli("action", "create", "b", str(code), "--secret", "nonsense").code == 2
