"""Threat: enormous files. Reported as not analysed; the scan stays within its budget."""

import time

from stockade.security.scanner import Scanner

from .scanner.conftest import plain, zipped


def test_an_enormous_source_file_in_an_archive_is_not_analysed(scan_rules):
    big = "x = 1\n" * (scan_rules.limits.max_file_bytes // 6 + 10)
    report = Scanner(scan_rules).scan(
        zipped({"__main__.py": "def main(a):\n    return a\n", "huge.py": big + "eval(input())\n"})
    )
    (finding,) = [f for f in report.findings if f.rule_id == "bundle.file-too-large"]
    assert finding.file == "huge.py"
    assert "py.code-injection" not in {f.rule_id for f in report.findings}


def test_enormous_plain_code_is_reported(scan_rules):
    report = Scanner(scan_rules).scan(plain("y = 2\n" * (scan_rules.limits.max_file_bytes // 6 + 10)))
    assert {f.rule_id for f in report.findings} == {"bundle.file-too-large"}


def test_the_total_read_budget_stops_reading(scan_limits):
    scan_rules = scan_limits(max_read_bytes=4096, max_file_bytes=2048)
    files = {f"m{i}.py": "z = 3\n" * 300 for i in range(10)}
    report = Scanner(scan_rules).scan(zipped(files))
    assert [f.rule_id for f in report.findings].count("bundle.scan-budget") == 1


def test_a_long_minified_line_is_bounded_in_time(scan_rules):
    line = "var a=" + "+".join(f"'{i:08x}'" for i in range(60_000)) + ";\n"
    started = time.perf_counter()
    Scanner(scan_rules).scan(plain(line, "nodejs"))
    assert time.perf_counter() - started < 20
