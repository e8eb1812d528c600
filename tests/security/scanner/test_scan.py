"""The whole scan, and ``python -m stockade.security.scanner`` (what ``stockade scan PATH`` runs)."""

import io
import json

import pytest

from stockade.security.scanner import Scanner, iter_osv_documents, parse_osv
from stockade.security.scanner.__main__ import main

from .conftest import ADVISORIES, WORD_COUNT_JS, WORD_COUNT_PY, make_zip, plain, rule_ids, zipped

LODASH = {
    "id": "GHSA-test-lodash",
    "aliases": ["CVE-2021-23337"],
    "affected": [
        {
            "package": {"ecosystem": "npm", "name": "lodash"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}],
        }
    ],
    "database_specific": {"severity": "HIGH"},
}


def test_the_seeds_word_count_and_its_python_twin_are_reported(scanner):
    assert "js.command-injection" in rule_ids(scanner.scan(plain(WORD_COUNT_JS, "nodejs")))
    assert "py.command-injection" in rule_ids(scanner.scan(plain(WORD_COUNT_PY, "python")))


def test_a_zip_action_is_scanned_end_to_end(scanner):
    report = scanner.scan(
        zipped(
            {
                "index.js": "const _ = require('lodash');\nexports.main = () => ({});\n",
                "package.json": json.dumps({"dependencies": {"lodash": "^4.17.0"}}),
                "package-lock.json": json.dumps(
                    {"lockfileVersion": 3, "packages": {"node_modules/lodash": {"version": "4.17.20"}}}
                ),
            },
            family="nodejs",
            parameters={"password": "correct horse battery staple"},
            annotations={"web-export": True},
            target="/guest/app",
        ),
        [parse_osv(LODASH)],
    )
    assert rule_ids(report) == {
        "dependency.vulnerable",
        "secret.plain-parameter",
        "policy.web-without-auth",
        "dependency.locked",  # the lock file, credited
    }
    vuln = next(f for f in report.findings if f.rule_id == "dependency.vulnerable")
    assert (vuln.package, vuln.version, vuln.advisory.id, vuln.advisory.fixed_versions) == (
        "lodash",
        "4.17.20",
        "GHSA-test-lodash",
        ("4.17.21",),
    )
    assert vuln.file == "package.json"
    assert vuln.line == 1
    assert report.target == "/guest/app"
    assert report.files_scanned == 1
    assert {d.normalized for d in report.dependencies} == {"lodash"}


def test_recheck_matches_an_inventory_against_new_advisories(scanner):
    prepared = scanner.prepare(
        zipped(
            {"package-lock.json": json.dumps({"packages": {"node_modules/lodash": {"version": "4.17.0"}}})}, "nodejs"
        )
    )
    assert prepared.packages == {"npm": ["lodash"]}
    report = scanner.complete(prepared, [])
    assert "dependency.vulnerable" not in rule_ids(report)
    (finding,) = scanner.recheck(report.dependencies, [parse_osv(LODASH)])
    assert finding.advisory.id == "GHSA-test-lodash"


def test_withdrawn_advisories_do_not_match(scanner):
    withdrawn = parse_osv({**LODASH, "withdrawn": "2024-01-01T00:00:00Z"})
    assert (
        scanner.recheck(
            scanner.prepare(
                zipped(
                    {"package-lock.json": json.dumps({"packages": {"node_modules/lodash": {"version": "4.17.0"}}})},
                    "nodejs",
                )
            ).dependencies,
            [withdrawn],
        )
        == []
    )


def test_too_many_source_files_are_capped(small_limits):
    scanner = Scanner(small_limits(max_analysed_files=2))
    report = scanner.scan(zipped({f"m{i}.py": "x = 1\n" for i in range(4)}))
    assert "bundle.scan-budget" in rule_ids(report)
    assert report.files_scanned == 2


def run_main(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_local_scan_blocks_with_exit_1_and_writes_sarif(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "index.js").write_text(WORD_COUNT_JS)
    sarif = tmp_path / "out.sarif"
    code, out, _ = run_main(str(app), "--sarif", str(sarif))
    assert code == 1
    assert "js.command-injection" in out
    assert "BLOCKED" in out
    assert json.loads(sarif.read_text())["runs"][0]["results"][0]["ruleId"] == "js.command-injection"
    code, out, _ = run_main(str(app), "--fail-on", "critical", "--json")
    assert code == 0
    assert json.loads(out)["blocked"] is False
    code, out, _ = run_main(str(app), "--sarif", "-")
    assert json.loads(out)["version"] == "2.1.0"


def test_local_scan_with_real_advisories_parameters_and_annotations(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "__main__.py").write_text("import requests\ndef main(a):\n    return {}\n")
    (app / "requirements.txt").write_text("requests==2.30.0\n")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.json").write_text("{")
    (bad / "notosv.json").write_text('{"affected": []}')
    code, out, err = run_main(
        str(app),
        "--advisories",
        str(ADVISORIES),
        "--advisories",
        str(bad),
        "-p",
        "token",
        '"abcdefghijklmnop"',
        "-a",
        "web-export",
        "true",
    )
    assert code == 1
    assert "PYSEC-2023-74" in out
    assert "secret.plain-parameter" in out
    assert "policy.web-without-auth" in out
    assert "2 files under" in err


def test_local_scan_usage_errors_exit_2(tmp_path):
    assert run_main(str(tmp_path / "missing"))[0] == 2
    assert run_main("--fail-on", "urgent", str(tmp_path))[0] == 2
    assert run_main("--help")[0] == 0


def test_local_scan_reports_broken_rules(tmp_path, monkeypatch):
    from stockade.security.scanner import RulesError
    from stockade.security.scanner import __main__ as cli

    def broken():
        raise RulesError("scanner rules x.json are invalid")

    monkeypatch.setattr(cli, "Scanner", broken)
    code, _, err = run_main(str(tmp_path))
    assert code == 2
    assert "invalid" in err


@pytest.mark.parametrize("name", ["requests"])
def test_real_snapshot_advisories_match_through_the_library(scanner, name):
    advisories = [parse_osv(doc) for n, doc in iter_osv_documents(ADVISORIES / "vulns" / name) if isinstance(doc, dict)]
    files = {"__main__.py": f"import {name}\n", "requirements.txt": f"{name}==2.30.0\n"}
    report = scanner.scan(zipped(files), advisories)
    assert {f.advisory.id for f in report.findings if f.advisory} == {"PYSEC-2023-74"}
    files["requirements.txt"] = f"{name}==2.31.0\n"
    assert scanner.scan(zipped(files), advisories).findings == ()
    assert make_zip({}) is not None
