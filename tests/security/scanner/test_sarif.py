"""SARIF 2.1.0 output."""

from stockade.security.scanner import AdvisoryRef, Finding, ScanReport, Severity, to_sarif


def test_sarif_has_the_2_1_0_shape_with_rules_results_and_locations(rules):
    report = ScanReport(
        findings=(
            Finding("py.command-injection", Severity.HIGH, "shell", file="__main__.py", line=3),
            Finding("dependency.vulnerable", Severity.CRITICAL, "vuln", file="requirements.txt", line=1,
                    package="requests", version="2.2.1", advisory=AdvisoryRef("PYSEC-1", ("CVE-1",), ("2.3.0",))),
            Finding("policy.web-without-auth", Severity.MEDIUM, "web"),
            Finding("custom.rule", Severity.INFO, "unknown rule"),
        ),
        target="/guest/x",
    )  # fmt: skip
    sarif = to_sarif(report, rules, blocking=Severity.at_least(Severity.HIGH))
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-2.1.0.json")
    (run,) = sarif["runs"]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rule_ids == sorted(rule_ids)
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert by_rule["dependency.vulnerable"]["level"] == "error"
    assert by_rule["dependency.vulnerable"]["properties"]["advisory"]["id"] == "PYSEC-1"
    assert by_rule["dependency.vulnerable"]["properties"]["blocking"] is True
    assert by_rule["py.command-injection"]["locations"][0]["physicalLocation"]["region"] == {"startLine": 3}
    assert by_rule["policy.web-without-auth"]["level"] == "warning"
    assert "locations" not in by_rule["policy.web-without-auth"]
    assert by_rule["custom.rule"]["level"] == "note"
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    assert run["properties"]["counts"]["critical"] == 1
