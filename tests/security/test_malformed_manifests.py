"""Threat: malformed manifests and lock files. Clear findings, never a crash."""

import json

import pytest

from stockade.security.scanner import Scanner

from .scanner.conftest import zipped

MALFORMED = [
    ("requirements.txt", "requests>=>2\n"),
    ("requirements.txt", "-r\n"),
    ("pyproject.toml", "[project\ndependencies = "),
    ("pyproject.toml", "[project]\ndependencies = 'requests'\n"),
    ("pyproject.toml", "[project]\ndependencies = [1, 2]\n"),
    ("pyproject.toml", "x = " + "[" * 5000 + "]" * 5000 + "\n"),
    ("poetry.lock", "[[package]\n"),
    ("package.json", "{not json"),
    ("package.json", "[1, 2, 3]"),
    ("package.json", json.dumps({"dependencies": ["lodash"]})),
    ("package.json", json.dumps({"dependencies": {"lodash": 4}})),
    ("package.json", "[" * 100_000 + "]" * 100_000),
    ("package-lock.json", json.dumps({"dependencies": "nope"})),
    ("package-lock.json", "\xff\xfe garbage"),
    ("x-1.0.dist-info/METADATA", "Name: x\n"),
    ("node_modules/y/package.json", "{"),
]


@pytest.mark.parametrize(("name", "content"), MALFORMED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(MALFORMED)])
def test_malformed_manifests_are_findings(scan_rules, name, content):
    report = Scanner(scan_rules).scan(zipped({name: content, "__main__.py": "x = 1\n"}))
    assert "manifest.malformed" in {f.rule_id for f in report.findings}
    finding = next(f for f in report.findings if f.rule_id == "manifest.malformed")
    assert finding.file == name


def test_odd_but_valid_lock_entries_are_skipped_quietly(scan_rules):
    lock = {
        "lockfileVersion": 2,
        "packages": {
            "": {},
            "node_modules/a": "nope",
            "node_modules/b": {"version": 7},
            "node_modules/c": {"version": "file:../c"},
        },
    }
    deep = {"dependencies": {}}
    level = deep["dependencies"]
    for i in range(200):
        level[f"p{i}"] = {"version": "1.0.0", "dependencies": {}}
        level = level[f"p{i}"]["dependencies"]
    report = Scanner(scan_rules).scan(
        zipped({"package-lock.json": json.dumps(lock), "npm-shrinkwrap.json": json.dumps(deep)}, "nodejs")
    )
    assert "manifest.malformed" not in {f.rule_id for f in report.findings}
    assert len(report.dependencies) == 65  # the v1 walk stops at its depth limit
