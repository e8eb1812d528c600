"""Reading advisory dumps: every refusal is a reason, never an exception or a file written."""

import io
import os
import tarfile
import zipfile

import pytest

from stockade.security.scanner.archives import ArchiveError, iter_archive_members


def members(path, cap=100):
    return dict(iter_archive_members(path, suffixes=(".json",), max_member_bytes=cap))


def test_directory_members_over_the_cap_or_special_are_skipped(tmp_path):
    (tmp_path / "ok.json").write_text("{}")
    (tmp_path / "big.json").write_text("x" * 200)
    os.mkfifo(tmp_path / "pipe.json")
    found = members(tmp_path)
    assert found["ok.json"] == b"{}"
    assert isinstance(found["big.json"], ArchiveError)
    assert isinstance(found["pipe.json"], ArchiveError)


def test_directory_with_too_many_files_is_refused(tmp_path, monkeypatch):
    from stockade.security.scanner import archives

    monkeypatch.setattr(archives, "MAX_MEMBERS", 2)
    for i in range(3):
        (tmp_path / f"{i}.json").write_text("{}")
    with pytest.raises(ArchiveError, match="more than 2"):
        members(tmp_path)


def test_zip_members_over_the_cap_links_and_corruption_are_reasons(tmp_path, monkeypatch):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.json", "x" * 200)
        zf.writestr("ok.json", "{}" * 30)
        zf.writestr("dir/", "")
    found = members(archive)
    assert isinstance(found["big.json"], ArchiveError)
    assert found["ok.json"] == b"{}" * 30
    raw = bytearray(archive.read_bytes())
    start = raw.index(b"ok.json") + len("ok.json")
    raw[start : start + 8] = b"\xff" * 8
    broken = tmp_path / "broken.zip"
    broken.write_bytes(bytes(raw))
    assert isinstance(members(broken)["ok.json"], ArchiveError)

    from stockade.security.scanner import archives

    monkeypatch.setattr(archives, "MAX_MEMBERS", 1)
    with pytest.raises(ArchiveError, match="entries"):
        members(archive)


def test_tar_members_over_the_cap_and_corrupt_archives(tmp_path, monkeypatch):
    tarball = tmp_path / "a.tar"
    with tarfile.open(tarball, "w") as tf:
        for name, data in (("big.json", b"x" * 200), ("ok.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    found = members(tarball)
    assert isinstance(found["big.json"], ArchiveError)
    assert found["ok.json"] == b"{}"
    from stockade.security.scanner import archives

    monkeypatch.setattr(archives, "MAX_MEMBERS", 1)
    with pytest.raises(ArchiveError, match="entries"):
        members(tarball)
    monkeypatch.setattr(archives, "MAX_MEMBERS", 100)
    truncated = tmp_path / "t.tar.gz"
    truncated.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20)
    with pytest.raises(ArchiveError):
        members(truncated)


def test_single_files_and_unknown_paths(tmp_path):
    single = tmp_path / "one.json"
    single.write_text("{}")
    assert members(single) == {"one.json": b"{}"}
    single.write_text("x" * 200)
    with pytest.raises(ArchiveError, match="larger than"):
        members(single)
    with pytest.raises(ArchiveError, match="not a directory"):
        members(tmp_path / "missing.bin")
    corrupt = tmp_path / "c.zip"
    corrupt.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    assert members(corrupt) == {}
