"""Threat: path-traversal and link entries in a zip action. Reported; nothing is written anywhere."""

import io
import os
import stat
import zipfile

from stockade.security.scanner import ScanInput, Scanner

from .scanner.conftest import zip_code


def _raw_zip(names: list[str]) -> str:
    import base64

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            info = zipfile.ZipInfo("placeholder")
            info.filename = name  # bypass ZipInfo's own normalisation, as a hostile tool would
            archive.writestr(info, b"import os\nos.system('touch /tmp/owned')\n")
    return base64.b64encode(buffer.getvalue()).decode()


def test_escaping_names_are_critical_findings_and_are_not_read(scan_rules, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = _raw_zip(["../evil.py", "/etc/cron.d/evil.py", "a/../../b.py", "c:/win.py", "dir\\..\\x.py", "ok.py"])
    report = Scanner(scan_rules).scan(ScanInput(code=code, binary=True, family="python"))
    traversal = [f for f in report.findings if f.rule_id == "bundle.path-traversal"]
    assert len(traversal) == 5
    assert all(f.severity.value == "critical" for f in traversal)
    # Only the safe entry was analysed.
    assert {f.file for f in report.findings if f.rule_id.startswith("py.")} == {"ok.py"}
    assert list(tmp_path.iterdir()) == []
    assert not os.path.exists(tmp_path.parent / "evil.py")


def test_symlinks_and_special_files_are_reported(scan_rules):
    buffer_code = zip_code({"__main__.py": "x = 1\n"}, links={"secrets": "/etc/shadow"})
    report = Scanner(scan_rules).scan(ScanInput(code=buffer_code, binary=True, family="python"))
    assert [f.rule_id for f in report.findings] == ["bundle.link"]

    import base64

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        fifo = zipfile.ZipInfo("pipe")
        fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
        archive.writestr(fifo, b"")
    report = Scanner(scan_rules).scan(
        ScanInput(code=base64.b64encode(buffer.getvalue()).decode(), binary=True, family="python")
    )
    assert [f.message for f in report.findings] == ["entry 'pipe' is a special file"]


def test_duplicate_and_encrypted_entries_are_reported(scan_rules):
    import base64

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__main__.py", "x = 1\n")
        archive.writestr("./__main__.py", "eval(input())\n")
        archive.writestr("hidden.py", b"garbage")
    raw = bytearray(buffer.getvalue())
    # Mark hidden.py encrypted in its central directory record (general purpose flag bit 0).
    central = raw.rindex(b"PK\x01\x02")
    raw[central + 8] |= 0x1
    report = Scanner(scan_rules).scan(
        ScanInput(code=base64.b64encode(bytes(raw)).decode(), binary=True, family="python")
    )
    assert {f.rule_id for f in report.findings} == {"bundle.duplicate-entry", "bundle.encrypted-entry"}


def test_local_directories_with_links_out_are_not_followed(scan_rules, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "__main__.py").write_text("x = 1\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.py").write_text("eval(input())\n")
    (app / "linked").symlink_to(outside, target_is_directory=True)
    report = Scanner(scan_rules).complete(Scanner(scan_rules).prepare_path(app), [])
    assert [f.rule_id for f in report.findings] == ["bundle.link"]
