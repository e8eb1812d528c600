"""``stockade advisories import``, ``stockade scan report``, ``stockade scan PATH`` and ``--accept-risk``."""

import io
import json
import os
import sys
import tarfile
import zipfile

import pytest

from stockade.cli.main import run
from stockade.cli.scans import local_scan_arguments

OSV_JSON = {"id": "GHSA-1", "affected": []}
OSV_YAML = "id: PYSEC-1\nmodified: 2021-07-05T00:01:25Z\naffected: []\n"


def test_advisories_import_reads_a_directory_and_posts_batches(cli, api, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.json").write_text(json.dumps(OSV_JSON))
    (tmp_path / "a" / "two.yaml").write_text(OSV_YAML)
    (tmp_path / "three.yml").write_text("id: PYSEC-3\n")
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "ignored.md").write_text("# no")
    (tmp_path / "link.json").symlink_to(tmp_path / "a" / "one.json")
    for _ in range(2):
        api.reply(200, {"created": 2, "updated": 0, "unchanged": 0, "rejected": [{"index": 0, "id": "x", "error": "bad"}],
                        "newlyVulnerable": [{"namespace": "guest", "action": "a", "version": "0.0.1", "advisories": ["GHSA-1"]}]})  # fmt: skip
    result = cli("advisories", "import", str(tmp_path), "--batch-size", "2")
    assert result.code == 0, result.err
    posts = [c for c in api.calls if c.method == "POST"]
    assert [c.path for c in posts] == ["/api/v1/admin/advisories"] * 2
    sent = [doc for c in posts for doc in c.body["advisories"]]
    assert {d["id"] for d in sent} == {"GHSA-1", "PYSEC-1", "PYSEC-3"}
    assert next(d for d in sent if d["id"] == "PYSEC-1")["modified"] == "2021-07-05T00:01:25Z"
    assert "4 new" in result.out
    assert "2 rejected" in result.out
    assert "3 unreadable" in result.out
    assert "now vulnerable: /guest/a@0.0.1 (GHSA-1)" in result.out
    assert "warning: skipped" in result.err
    assert "warning: rejected advisory x: bad" in result.err


def test_advisories_import_reads_zip_and_tar_archives(cli, api, tmp_path):
    archive = tmp_path / "osv.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/one.json", json.dumps(OSV_JSON))
        zf.writestr("../evil.json", json.dumps(OSV_JSON))
    assert cli("--json", "advisories", "import", str(archive)).code == 0
    assert [d["id"] for d in api.last.body["advisories"]] == ["GHSA-1"]
    tarball = tmp_path / "osv.tar.gz"
    with tarfile.open(tarball, "w:gz") as tf:
        data = OSV_YAML.encode()
        info = tarfile.TarInfo("y/two.yaml")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    result = cli("--json", "advisories", "import", str(tarball))
    assert result.code == 0
    assert json.loads(result.out)["unreadable"] == 0
    assert [d["id"] for d in api.last.body["advisories"]] == ["PYSEC-1"]


def test_advisories_import_refuses_bad_paths_and_batch_sizes(cli, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\0")
    assert cli("advisories", "import", str(junk)).code == 2
    assert cli("advisories", "import", str(tmp_path), "--batch-size", "0").code == 2


def test_scan_report_prints_a_summary_or_sarif(cli, api):
    report = {
        "namespace": "guest", "action": "pkg/x", "version": "0.0.2", "decision": "accepted",
        "policy": {"block": ["critical", "high"]}, "acceptedRisk": {"subject": "alice", "reason": "known"},
        "report": {"counts": {"high": 1, "low": 0},
                   "findings": [{"severity": "high", "rule": "py.command-injection", "file": "__main__.py", "line": 5, "message": "shell"},
                                {"severity": "low", "rule": "policy.x", "file": None, "line": None, "message": "m"}]},
    }  # fmt: skip
    api.reply(200, report)
    result = cli("scan", "report", "pkg/x", "--version", "0.0.2")
    assert result.code == 0
    assert api.last.path == "/api/v1/namespaces/_/scans/pkg/x"
    assert api.last.query == {"format": "json", "version": "0.0.2"}
    assert "decision: accepted" in result.out
    assert "risk accepted by alice: known" in result.out
    assert "[high] py.command-injection __main__.py:5: shell" in result.out
    assert "[low] policy.x -: m" in result.out
    api.reply(200, {"version": "2.1.0", "runs": []})
    result = cli("scan", "report", "x", "--sarif")
    assert api.last.query == {"format": "sarif"}
    assert json.loads(result.out)["version"] == "2.1.0"


def test_accept_risk_is_sent_as_a_query_parameter(cli, api, tmp_path):
    source = tmp_path / "a.py"
    source.write_text("def main(a):\n    return a\n")
    assert cli("action", "create", "a", str(source), "--accept-risk", "reviewed by security").code == 0
    assert api.last.query == {"acceptRisk": "reviewed by security"}
    assert cli("action", "update", "a", str(source), "--accept-risk", "again").code == 0
    assert api.last.query == {"overwrite": "true", "acceptRisk": "again"}
    assert cli("action", "update", "a", str(source)).code == 0
    assert api.last.query == {"overwrite": "true"}


def test_a_blocked_deploy_exits_2_with_the_findings(cli, api, tmp_path):
    source = tmp_path / "a.py"
    source.write_text("x = 1\n")
    api.error(
        400, "Deploy blocked by the security gate: 1 finding(s)\n- [high] py.command-injection __main__.py:5: shell"
    )
    result = cli("action", "create", "a", str(source))
    assert result.code == 2
    assert "py.command-injection" in result.err


@pytest.mark.parametrize(
    ("argv", "forwarded"),
    [
        (["scan", "./app"], ["./app"]),
        (
            ["scan", "app.zip", "--sarif", "out.sarif", "--fail-on", "high"],
            ["app.zip", "--sarif", "out.sarif", "--fail-on", "high"],
        ),
        (["--apihost", "h", "--json", "scan", "x", "--help"], ["x", "--help"]),
        (["scan", "--advisories", "osv", "app"], ["--advisories", "osv", "app"]),
    ],
)
def test_scan_path_execs_the_scanner_module(monkeypatch, argv, forwarded):
    calls = []

    def execv(path, args):
        calls.append((path, list(args)))
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", execv)
    with pytest.raises(SystemExit):
        run(argv)
    assert calls == [(sys.executable, [sys.executable, "-m", "stockade.security.scanner", *forwarded])]


@pytest.mark.parametrize(
    "argv",
    [["scan"], ["scan", "report", "x"], ["scan", "--help"], ["--help"], ["action", "scan"], ["--version", "scan", "x"]],
)
def test_other_scan_forms_stay_in_the_cli(argv):
    assert local_scan_arguments(argv) is None


def test_scan_path_reports_exec_failure(monkeypatch):
    def broken(path, args):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(os, "execv", broken)
    err = io.StringIO()
    assert run(["scan", "x"], stderr=err) == 1
    assert err.getvalue().startswith("error: cannot start the scanner: ")


def test_advisories_sync_asks_the_platform_per_ecosystem_and_shows_the_state(cli, api):
    status = {
        "ecosystems": {
            "PyPI": {"advisories": 0, "lastUpdate": None, "state": "missing"},
            "npm": {"advisories": 0, "lastUpdate": None, "state": "missing"},
        }
    }
    after = {
        "PyPI": {"advisories": 17000, "lastUpdate": 1_780_000_000_000, "state": "current"},
        "npm": {"advisories": 3, "lastUpdate": 1_000, "state": "stale"},
    }
    api.reply(200, status)
    api.reply(200, {"synced": [{"ecosystem": "PyPI", "status": "updated", "advisories": 17000, "created": 17000,
                                "updated": 0, "unchanged": 0, "rejected": 0, "newlyVulnerable": 2}], "ecosystems": after})  # fmt: skip
    api.reply(200, {"synced": [{"ecosystem": "npm", "status": "not-modified", "advisories": 3}], "ecosystems": after})
    result = cli("advisories", "sync")
    assert result.code == 0, result.err
    posts = [c for c in api.calls if c.method == "POST"]
    assert [(c.path, c.body) for c in posts] == [
        ("/api/v1/admin/advisories/sync", {"ecosystems": ["PyPI"]}),
        ("/api/v1/admin/advisories/sync", {"ecosystems": ["npm"]}),
    ]
    assert "PyPI: 17000 advisories: 17000 new" in result.out
    assert "2 deployed action version(s) newly vulnerable" in result.out
    assert "npm: unchanged since the last sync" in result.out
    assert "STALE" in result.out
