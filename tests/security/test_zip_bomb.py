"""Threat: a zip bomb in a zip action. The gate reports it and reads nothing, quickly."""

import io
import time
import zipfile

from stockade.security.scanner import ScanInput, Scanner

from .scanner.conftest import zip_code


def _bomb(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("__main__.py", b"def main(a):\n    return a\n")
        with archive.open("payload.py", "w") as handle:
            chunk = b"\0" * (1 << 20)
            for _ in range(size >> 20):
                handle.write(chunk)
    return buffer.getvalue()


def _scan(scan_rules, raw: bytes):
    import base64

    return Scanner(scan_rules).scan(ScanInput(code=base64.b64encode(raw).decode(), binary=True, family="python"))


def test_a_high_ratio_archive_is_a_bomb_and_is_not_read(scan_rules):
    raw = _bomb(64 << 20)  # 64 MiB of zeros in ~64 KiB
    started = time.perf_counter()
    report = _scan(scan_rules, raw)
    assert time.perf_counter() - started < 5
    assert "bundle.zip-bomb" in {f.rule_id for f in report.findings}
    assert report.files_scanned == 0


def test_declared_sizes_over_the_absolute_cap_are_a_bomb(scan_limits):
    scan_rules = scan_limits(max_unpacked_bytes=1 << 20)
    report = _scan(scan_rules, _bomb(2 << 20))
    assert "bundle.zip-bomb" in {f.rule_id for f in report.findings}


def test_too_many_entries_are_reported_without_walking_them(scan_limits):
    scan_rules = scan_limits(max_entries=50)
    report = Scanner(scan_rules).scan(
        ScanInput(code=zip_code({f"f{i}.py": "x = 1" for i in range(60)}), binary=True, family="python")
    )
    assert {f.rule_id for f in report.findings} == {"bundle.too-many-entries"}


def test_an_archive_over_the_read_limit_is_not_opened(scan_limits):
    scan_rules = scan_limits(max_archive_bytes=1000)
    report = _scan(scan_rules, _bomb(1 << 20) + b"\0" * 2000)
    assert "bundle.zip-bomb" in {f.rule_id for f in report.findings}
