"""`stockade scan` never says "passed" for a check it could not run (issue 13): with no
advisories loaded, a folder pinning requests==2.30.0 is reported INCOMPLETE with an
advisories.unavailable finding; with the advisories it is BLOCKED."""

import io
import json

from stockade.security.scanner.__main__ import main

from .conftest import ADVISORIES


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue()


def test_no_advisories_is_not_a_pass(tmp_path):
    (tmp_path / "requirements.txt").write_text("requests==2.30.0\n")
    (tmp_path / "__main__.py").write_text("import requests\n\ndef main(a):\n    return a\n")
    code, out = run(str(tmp_path))
    last = out.strip().splitlines()[-1]
    assert "passed" not in last
    assert "INCOMPLETE" in last
    assert "dependency check did NOT run for PyPI" in last
    assert "advisories.unavailable" in out
    assert code == 0  # a warning, not a blocking finding
    _code, text = run(str(tmp_path), "--json")
    assert "advisories.unavailable" in {f["rule"] for f in json.loads(text)["findings"]}


def test_with_advisories_the_check_runs(tmp_path):
    (tmp_path / "requirements.txt").write_text("requests==2.30.0\n")
    (tmp_path / "__main__.py").write_text("import requests\n\ndef main(a):\n    return a\n")
    code, out = run(str(tmp_path), "--advisories", str(ADVISORIES))
    assert code == 1
    assert "BLOCKED" in out
    assert "advisories.unavailable" not in out


def test_code_without_dependencies_still_passes(tmp_path):
    (tmp_path / "__main__.py").write_text("def main(a):\n    return a\n")
    code, out = run(str(tmp_path))
    assert code == 0
    assert out.strip().endswith("passed")


def test_a_file_too_large_to_analyse_is_not_a_pass(tmp_path):
    (tmp_path / "__main__.py").write_text("def main(a):\n    return a\n")
    (tmp_path / "huge.py").write_text("x = 1\n" * (3 * 1024 * 1024 // 6 + 10))
    code, out = run(str(tmp_path))
    last = out.strip().splitlines()[-1]
    assert "passed" not in last
    assert "INCOMPLETE" in last
    assert "bundle.file-too-large" in last
    assert code == 0


def test_coverage_findings_missing_stale_and_current(rules):
    from stockade.security.scanner.dependencies import advisory_coverage_findings
    from stockade.security.scanner.findings import Dependency

    deps = [
        Dependency("PyPI", "requests", "requests", "2.30.0", "==2.30.0", "requirements.txt", 1),
        Dependency("npm", "lodash", "lodash", "4.17.20", "4.17.20", "package.json", 1),
    ]
    day = 86_400_000
    coverage = {"PyPI": (100, 10 * day), "npm": (0, None)}
    found = advisory_coverage_findings(deps, coverage, rules, now_ms=20 * day, max_age_ms=7 * day)
    assert sorted((f.rule_id, f.ecosystem) for f in found) == [
        ("advisories.stale", "PyPI"),
        ("advisories.unavailable", "npm"),
    ]
    assert "10 day(s) ago" in next(f.message for f in found if f.rule_id == "advisories.stale")
    fresh = advisory_coverage_findings(deps[:1], coverage, rules, now_ms=12 * day, max_age_ms=7 * day)
    assert fresh == []
    assert advisory_coverage_findings([], {}, rules) == []
