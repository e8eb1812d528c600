"""SARIF 2.1.0 output of a ScanReport, for code-scanning dashboards and CI."""

from __future__ import annotations

from typing import Any

from stockade.security.scanner.findings import ScanReport, Severity
from stockade.security.scanner.rules import RuleBook, default_rulebook

__all__ = ["SARIF_SCHEMA", "SARIF_VERSION", "to_sarif"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "stockade-deploy-gate"
# SARIF result levels; "security-severity" carries the finer grade (GitHub reads it as CVSS-like).
_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note"}
_SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "2.0"}


def to_sarif(
    report: ScanReport, rules: RuleBook | None = None, *, blocking: frozenset[Severity] = frozenset()
) -> dict[str, Any]:
    """The report as a SARIF log with one run; ``blocking`` findings are marked in properties."""
    book = rules or default_rulebook()
    used = sorted({f.rule_id for f in report.findings})
    index = {rule_id: i for i, rule_id in enumerate(used)}
    driver_rules = []
    for rule_id in used:
        rule = book.rules.get(rule_id)
        driver_rules.append(
            {
                "id": rule_id,
                "name": rule_id.replace(".", "/"),
                "shortDescription": {"text": rule.title if rule else rule_id},
                "fullDescription": {"text": rule.reason if rule else rule_id},
                "defaultConfiguration": {"level": _LEVEL.get(rule.severity, "note") if rule else "warning"},
                "properties": {"tags": ["security", rule.family if rule else "other"]},
            }
        )
    results = []
    for finding in report.findings:
        result: dict[str, Any] = {
            "ruleId": finding.rule_id,
            "ruleIndex": index[finding.rule_id],
            "level": _LEVEL.get(finding.severity, "note"),
            "message": {"text": finding.message},
            "properties": {
                "severity": finding.severity.value,
                "security-severity": _SECURITY_SEVERITY.get(finding.severity, "0.0"),
                "blocking": finding.severity in blocking,
            },
        }
        if finding.file:
            location: dict[str, Any] = {"artifactLocation": {"uri": finding.file}}
            if finding.line:
                location["region"] = {"startLine": finding.line}
            result["locations"] = [{"physicalLocation": location}]
        if finding.advisory is not None:
            result["properties"]["advisory"] = finding.advisory.to_json()
            result["partialFingerprints"] = {
                "advisory/package/version": f"{finding.advisory.id}/{finding.package}/{finding.version}"
            }
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": {"name": TOOL_NAME, "rules": driver_rules}},
                "results": results,
                "properties": {"target": report.target, "counts": report.counts()},
            }
        ],
    }
