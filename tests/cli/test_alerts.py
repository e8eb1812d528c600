"""`stockade alerts`: list, webhooks (secret from a file or stdin, never argv), rules, dead letters."""

from __future__ import annotations

import io
import json

ALERTS = "/api/v1/namespaces/_/alerts"
ALERT = {"id": "a1", "severity": "critical", "rule": "sandbox-compromise", "count": 2, "last": 1_700_000_000_000,
         "title": "sandbox.tamper at /guest/a: rule sandbox-compromise"}  # fmt: skip


def test_bare_alerts_lists(cli, api):
    api.reply(200, [ALERT])
    result = cli("alerts", "--severity", "high")
    assert (api.last.path, api.last.query) == (ALERTS, {"severity": "high"})
    assert result.out.splitlines()[0].split() == ["TIME", "SEVERITY", "RULE", "EVENTS", "TITLE"]
    assert "sandbox-compromise" in result.out


def test_webhook_add_reads_the_secret_from_a_file(cli, api, tmp_path):
    path = tmp_path / "secret"
    path.write_text("whsec-0123456789abcdef\n")
    api.reply(200, {"id": "w1", "url": "https://hooks.example/x", "secretFingerprint": "hmac-sha256:ab"})
    result = cli("alerts", "webhook", "add", "https://hooks.example/x", "--secret-from-file", str(path))
    assert result.code == 0
    assert (api.last.method, api.last.path) == ("POST", f"{ALERTS}/webhooks")
    assert api.last.body == {
        "url": "https://hooks.example/x",
        "secret": "whsec-0123456789abcdef",
        "minSeverity": "medium",
    }
    assert result.out == "ok: added webhook w1 for https://hooks.example/x\n"
    assert "whsec" not in result.out + result.err


def test_webhook_add_reads_stdin_by_default(cli, api, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"from-stdin-secret-123\n")))
    api.reply(200, {"id": "w2"})
    assert cli("alerts", "webhook", "add", "https://h.example/", "--min-severity", "high").code == 0
    assert api.last.body["secret"] == "from-stdin-secret-123"
    assert api.last.body["minSeverity"] == "high"


def test_webhook_list_and_delete(cli, api):
    api.reply(200, [{"id": "w1", "minSeverity": "medium", "url": "https://h.example/", "secretFingerprint": "fp"}])
    assert "https://h.example/" in cli("alerts", "webhook", "list").out
    api.reply(200, {"id": "w1", "deleted": True})
    assert cli("alerts", "webhook", "delete", "w1").out == "ok: deleted webhook w1\n"
    assert (api.last.method, api.last.path) == ("DELETE", f"{ALERTS}/webhooks/w1")


def test_rule_set_from_flags_and_from_a_file(cli, api, tmp_path):
    api.reply(200, {})
    result = cli("alerts", "rule", "set", "burst", "--types", "auth.failed,request.*", "--threshold", "5",
                 "--window-s", "30", "--severity", "high", "--tag", "payments")  # fmt: skip
    assert result.code == 0
    assert (api.last.method, api.last.path) == ("PUT", f"{ALERTS}/rules/burst")
    assert api.last.body == {"types": ["auth.failed", "request.*"], "threshold": 5, "window_s": 30,
                             "severity": "high", "tags": ["payments"]}  # fmt: skip
    path = tmp_path / "rule.json"
    path.write_text(json.dumps({"types": ["sandbox.*"], "dedup_s": 60}))
    api.reply(200, {})
    assert cli("alerts", "rule", "set", "r2", "--from-file", str(path)).code == 0
    assert api.last.body == {"types": ["sandbox.*"], "dedup_s": 60}
    assert cli("alerts", "rule", "set", "r3").code == 2


def test_rule_list_shows_platform_and_namespace_rules(cli, api):
    rule = {"id": "r", "types": ["auth.*"], "min_severity": "info", "threshold": 1, "window_s": 60, "dedup_s": 300,
            "severity": None}  # fmt: skip
    api.reply(200, {"platform": [rule], "namespace": [{**rule, "id": "mine"}]})
    out = cli("alerts", "rule", "list").out.splitlines()
    assert out[1].split()[:2] == ["platform", "r"]
    assert out[2].split()[:2] == ["namespace", "mine"]


def test_dead_letters(cli, api):
    api.reply(200, [{"at": 1, "webhook": "w1", "alert": "a1", "attempts": 5, "lastError": "HTTP 500"}])
    result = cli("alerts", "dead-letters", "--limit", "3")
    assert (api.last.path, api.last.query) == (f"{ALERTS}/deadletters", {"limit": "3"})
    assert "HTTP 500" in result.out
