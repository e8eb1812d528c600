"""OSV parsing, CVSS scoring, and reading OSV files from directories and archives."""

import io
import json
import tarfile
import zipfile

import pytest

from stockade.security.scanner import (
    AdvisoryError,
    Severity,
    cvss3_base_score,
    iter_osv_documents,
    parse_osv,
    parse_osv_text,
)

from .conftest import ADVISORIES

OSV = {
    "id": "GHSA-test-0001",
    "modified": "2024-01-01T00:00:00Z",
    "aliases": ["CVE-2024-0001"],
    "summary": "Prototype pollution in lodash",
    "affected": [
        {
            "package": {"ecosystem": "npm", "name": "lodash"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}],
        },
        {"ranges": [{"type": "GIT", "events": [{"introduced": "abc"}]}]},
    ],
    "database_specific": {"severity": "MODERATE"},
}


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
        ("CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:C/C:H/I:H/A:H", 7.2),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
    ],
)
def test_cvss3_base_scores_match_the_specification(vector, score):
    assert cvss3_base_score(vector) == score


@pytest.mark.parametrize("vector", ["CVSS:2.0/AV:N", "CVSS:3.1/AV:N/AC:L", "AV:N/AC:L/Au:N/C:P/I:P/A:P"])
def test_cvss_rejects_other_or_incomplete_vectors(vector):
    with pytest.raises(ValueError, match="CVSS v3"):
        cvss3_base_score(vector)


def test_parse_keeps_what_matching_needs():
    advisory = parse_osv(OSV)
    assert advisory.id == "GHSA-test-0001"
    assert advisory.aliases == ("CVE-2024-0001",)
    assert advisory.severity is Severity.MEDIUM
    assert advisory.packages == (("npm", "lodash"),)
    (lodash,) = advisory.affected
    assert lodash.fixed == ("4.17.21",)
    assert lodash.matches("4.17.20")
    assert not lodash.matches("4.17.21")
    ref = advisory.ref(lodash)
    assert ref.fixed_versions == ("4.17.21",)


def test_severity_prefers_a_cvss_vector_and_is_none_without_one():
    doc = {**OSV, "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}
    assert parse_osv(doc).severity is Severity.CRITICAL
    bad_vector = {**OSV, "severity": [{"type": "CVSS_V3", "score": "garbage"}], "database_specific": {}}
    assert parse_osv(bad_vector).severity is None
    low = {**OSV, "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"}]}
    assert parse_osv(low).severity is Severity.LOW


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ([], "must be an object"),
        ({"affected": []}, "'id'"),
        ({"id": "X", "affected": {}}, "'affected' must be a list"),
        ({"id": "X", "affected": ["nope"]}, "must be an object"),
        ({"id": "X", "affected": [{"package": {"name": "x"}}]}, "ecosystem"),
        (
            {
                "id": "X",
                "affected": [
                    {
                        "package": {"ecosystem": "npm", "name": "x"},
                        "ranges": [{"type": "SEMVER", "events": [{"opened": "1"}]}],
                    }
                ],
            },
            "unknown range event",
        ),
        (
            {
                "id": "X",
                "affected": [
                    {
                        "package": {"ecosystem": "npm", "name": "x"},
                        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0", "fixed": "1"}]}],
                    }
                ],
            },
            "exactly one key",
        ),
        (
            {"id": "X", "affected": [{"package": {"ecosystem": "npm", "name": "x"}, "ranges": ["x"]}]},
            "range must be an object",
        ),
        ({"id": "X" * 300}, "too long"),
        ({"id": "X", "aliases": [True]}, "aliases"),
    ],
)
def test_malformed_documents_are_refused_with_the_reason(doc, reason):
    with pytest.raises(AdvisoryError, match=reason):
        parse_osv(doc)


def test_yaml_is_read_with_the_safe_loader_and_timestamps_become_strings():
    doc = parse_osv_text("id: PYSEC-1\nmodified: 2021-07-05T00:01:25Z\naffected: []\n", "x.yaml")
    assert doc["modified"] == "2021-07-05T00:01:25Z"
    with pytest.raises(AdvisoryError, match="YAML"):
        parse_osv_text("!!python/object/apply:os.system ['touch /tmp/pwned']", "evil.yaml")
    with pytest.raises(AdvisoryError, match="not an OSV object"):
        parse_osv_text("[1, 2]", "list.json")
    with pytest.raises(AdvisoryError, match="JSON"):
        parse_osv_text("{", "broken.json")
    with pytest.raises(AdvisoryError, match="larger than"):
        parse_osv_text("x" * (5 * 1024 * 1024), "huge.json")


def _docs(path):
    return {name: doc for name, doc in iter_osv_documents(path)}


def test_osv_files_are_read_from_a_directory_skipping_links(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.json").write_text(json.dumps(OSV))
    (tmp_path / "two.yaml").write_text("id: PYSEC-2\naffected: []\n")
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "link.json").symlink_to(tmp_path / "a" / "one.json")
    docs = _docs(tmp_path)
    assert docs["a/one.json"]["id"] == "GHSA-test-0001"
    assert docs["two.yaml"]["id"] == "PYSEC-2"
    assert isinstance(docs["bad.json"], AdvisoryError)
    assert isinstance(docs["link.json"], AdvisoryError)
    assert "notes.txt" not in docs


def test_osv_files_are_read_from_zip_and_tar_archives_without_extracting(tmp_path):
    archive = tmp_path / "osv.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/one.json", json.dumps(OSV))
        zf.writestr("../evil.json", json.dumps(OSV))
    docs = _docs(archive)
    assert docs["x/one.json"]["id"] == "GHSA-test-0001"
    assert isinstance(docs["../evil.json"], AdvisoryError)

    tarball = tmp_path / "osv.tar.gz"
    with tarfile.open(tarball, "w:gz") as tf:
        data = json.dumps(OSV).encode()
        info = tarfile.TarInfo("y/one.json")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("y/link.json")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    docs = _docs(tarball)
    assert docs["y/one.json"]["id"] == "GHSA-test-0001"
    assert isinstance(docs["y/link.json"], AdvisoryError)
    assert {p.name for p in tmp_path.iterdir()} == {"osv.zip", "osv.tar.gz"}  # nothing was extracted


def test_unreadable_paths_are_reported_not_raised(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01")
    ((_, error),) = iter_osv_documents(junk)
    assert isinstance(error, AdvisoryError)
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tarball")
    ((_, error),) = iter_osv_documents(broken)
    assert isinstance(error, AdvisoryError)


def test_every_advisory_of_the_real_snapshot_parses():
    """The PyPA snapshot in shared/ is imported whole; a parser regression shows here first."""
    assert ADVISORIES.is_dir(), f"the advisory snapshot is missing at {ADVISORIES}"
    parsed = [parse_osv(doc) for _, doc in iter_osv_documents(ADVISORIES) if not isinstance(doc, AdvisoryError)]
    assert len(parsed) > 2500
    assert all(a.affected for a in parsed if not a.withdrawn)
