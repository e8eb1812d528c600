"""Threat: binary junk as action code or inside an archive. A finding, never a crash."""

import base64
import os

import pytest

from stockade.security.scanner import ScanInput, Scanner

from .scanner.conftest import make_zip


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_as_a_binary_action_are_unreadable(scan_rules, seed):
    junk = os.urandom(4096 + seed)
    report = Scanner(scan_rules).scan(ScanInput(code=base64.b64encode(junk).decode(), binary=True, family="python"))
    assert {f.rule_id for f in report.findings} == {"bundle.unreadable"}


def test_a_truncated_archive_is_unreadable(scan_rules):
    raw = make_zip({"__main__.py": "x = 1\n" * 1000})
    report = Scanner(scan_rules).scan(
        ScanInput(code=base64.b64encode(raw[: len(raw) // 2]).decode(), binary=True, family="python")
    )
    assert {f.rule_id for f in report.findings} == {"bundle.unreadable"}


def test_a_corrupt_member_is_reported_and_the_rest_scanned(scan_rules):
    raw = bytearray(make_zip({"a.py": "eval(input())\n" * 50, "b.py": "x = 1\n"}))
    start = raw.index(b"a.py") + 4  # the first local header's name, then its compressed data
    raw[start + 2 : start + 12] = b"\xff" * 10
    report = Scanner(scan_rules).scan(
        ScanInput(code=base64.b64encode(bytes(raw)).decode(), binary=True, family="python")
    )
    assert "bundle.unreadable" in {f.rule_id for f in report.findings}


def test_binary_and_undecodable_files_inside_an_archive_do_not_crash_analysis(scan_rules):
    files = {
        "__main__.py": b"def main(a):\n    return a\n",
        "blob.py": os.urandom(2048).replace(b"\0", b"") + b"\0",
        "latin.py": "x = 'caf\xe9'\n".encode("latin-1"),
        "junk.js": os.urandom(1024),
        "requirements.txt": os.urandom(512),
    }
    report = Scanner(scan_rules).scan(
        ScanInput(code=base64.b64encode(make_zip(files)).decode(), binary=True, family="python")
    )
    assert report.files_scanned >= 1
