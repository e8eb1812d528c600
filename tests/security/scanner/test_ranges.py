"""Ranges in manifests matched against advisories (issue 13): a specifier admitting an affected
version is a finding naming the advisory and the minimal safe bound."""

import pytest

from stockade.security.scanner import parse_osv
from stockade.security.scanner.ranges import admits, match_range

from .conftest import zipped

REQUESTS = parse_osv(
    {
        "id": "GHSA-j8r2-6x86-q33q",
        "modified": "2023-06-01T00:00:00Z",
        "aliases": ["CVE-2023-32681"],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "requests"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}],
            }
        ],
        "database_specific": {"severity": "MODERATE"},
    }
)
LODASH = parse_osv(
    {
        "id": "GHSA-35jh-r3h4-6jhm",
        "modified": "2021-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "npm", "name": "lodash"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}],
            }
        ],
        "database_specific": {"severity": "HIGH"},
    }
)
UNFIXED = parse_osv(
    {
        "id": "PYSEC-0000-1",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "oldlib"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}]}],
            }
        ],
    }
)


@pytest.mark.parametrize(
    ("spec", "hit"),
    [
        (">=2.0", True),
        ("<2.31", True),
        ("~=2.28", True),
        (">2.30,<2.31", True),
        (">=2.31", False),
        ("<2.3", False),
        ("==2.31.*", False),
    ],
)
def test_pypi_ranges(spec, hit):
    assert (match_range("PyPI", spec, REQUESTS.affected[0]) is not None) is hit


@pytest.mark.parametrize(
    ("spec", "hit"),
    [
        ("^4.17.0", True),
        ("4.x", True),
        (">=4.0.0 <4.17.21", True),
        ("~4.17.21", False),
        ("^4.17.21", False),
        ("*", True),
    ],
)
def test_npm_ranges(spec, hit):
    assert (match_range("npm", spec, LODASH.affected[0]) is not None) is hit


def test_npm_range_semantics():
    assert admits("npm", "^1.2.3", "1.9.0")
    assert not admits("npm", "^1.2.3", "2.0.0")
    assert admits("npm", "~1.2.3", "1.2.9")
    assert not admits("npm", "~1.2.3", "1.3.0")
    assert admits("npm", "^0.2.3", "0.2.9")
    assert not admits("npm", "^0.2.3", "0.3.0")
    assert admits("npm", "1.2.x || >=3", "3.1.0")
    assert not admits("npm", "1.2.x || >=3", "2.0.0")
    assert admits("npm", "1.0.0 - 1.5.0", "1.5.0")
    assert not admits("npm", "1.0.0 - 1.5.0", "1.5.1")


def test_findings_name_the_advisory_and_the_minimal_safe_bound(scanner):
    def scan(files, family, advisories):
        return scanner.scan(zipped(files, family=family), advisories)

    report = scan({"__main__.py": "import requests\n", "requirements.txt": "requests>=2.0\n"}, "python", [REQUESTS])
    (finding,) = [f for f in report.findings if f.rule_id == "dependency.vulnerable-range"]
    assert "GHSA-j8r2-6x86-q33q" in finding.message
    assert "requests>=2.31.0" in finding.message
    assert finding.severity.value == "medium"  # the range also admits safe versions
    assert finding.advisory is not None
    assert finding.advisory.id == "GHSA-j8r2-6x86-q33q"

    report = scan(
        {"index.js": "require('lodash')\n", "package.json": '{"dependencies": {"lodash": ">=4.0.0 <4.17.21"}}'},
        "nodejs",
        [LODASH],
    )
    (finding,) = [f for f in report.findings if f.rule_id == "dependency.vulnerable-range"]
    assert finding.severity.value == "high"  # nothing it admits is safe: the advisory's severity
    assert "lodash>=4.17.21" in finding.message

    report = scan({"__main__.py": "import oldlib\n", "requirements.txt": "oldlib>=1.0\n"}, "python", [UNFIXED])
    (finding,) = [f for f in report.findings if f.rule_id == "dependency.vulnerable-range"]
    assert "no fixed version is known" in finding.message
    assert finding.severity.value == "high"
