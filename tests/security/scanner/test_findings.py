"""Findings and reports round-trip through JSON; severities parse and order."""

import pytest

from stockade.security.scanner import AdvisoryRef, Dependency, Finding, ScanReport, Severity, parse_severities


def test_severities_parse_and_rank():
    assert parse_severities("critical, HIGH,,") == {Severity.CRITICAL, Severity.HIGH}
    assert parse_severities(["low"]) == {Severity.LOW}
    assert Severity.at_least(Severity.MEDIUM) == {Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM}
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        parse_severities("urgent")


def test_reports_round_trip_and_sort_most_severe_first():
    dep = Dependency("PyPI", "Requests", "requests", "2.2.1", "==2.2.1", "requirements.txt", 1)
    low = Finding("dependency.unused", Severity.LOW, "unused", file="requirements.txt")
    high = Finding(
        "dependency.vulnerable", Severity.HIGH, "vuln", file="requirements.txt", line=1, package="Requests",
        version="2.2.1", ecosystem="PyPI", advisory=AdvisoryRef("PYSEC-1", ("CVE-1",), ("2.3.0",), "s"), source="osv:PYSEC-1",
    )  # fmt: skip
    report = ScanReport(
        findings=(low, high, high), dependencies=(dep,), files_scanned=2, duration_ms=5, target="t", notes=("n",)
    )
    assert report.findings == (high, low)
    assert ScanReport.from_json(report.to_json()) == report
    assert report.counts()["high"] == 1
    assert report.advisory_ids() == {"PYSEC-1"}
    assert report.matching(frozenset({Severity.LOW})) == [low]
    assert report.with_findings([low]).findings == (high, low)
    assert high.location == "requirements.txt:1"
    assert low.location == "requirements.txt"
    assert Finding("x.y", Severity.INFO, "m").location == "-"
    assert high.describe().startswith("[high] dependency.vulnerable requirements.txt:1: ")
