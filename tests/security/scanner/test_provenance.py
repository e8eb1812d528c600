"""Dependency confusion and provenance (issue 13): index overrides (HTTPS included), trusted
hosts, VCS/URL/path dependencies are high-severity findings; lock files and hashes are credited."""

from stockade.security.scanner.bundle import bundle_from_zip
from stockade.security.scanner.manifests import read_manifests

from .conftest import make_zip


def findings(rules, files):
    result = read_manifests(bundle_from_zip(make_zip(files), rules), rules)
    return [(f.rule_id, f.severity.value, f.file, f.line) for f in result.findings], result.findings


def test_https_index_overrides_are_dependency_confusion(rules):
    for option in ("--index-url", "--extra-index-url", "--find-links", "-i", "-f"):
        found, raw = findings(
            rules, {"requirements.txt": f"{option} https://pkgs.corp.example/simple\nacme-utils==1.0\n"}
        )
        assert ("dependency.index-override", "high", "requirements.txt", 1) in found, option
        assert "dependency confusion" in raw[0].message


def test_index_credentials_are_not_repeated(rules):
    _found, raw = findings(
        rules, {"requirements.txt": "--extra-index-url https://user:s3cr3t@pkgs.corp.example/simple\n"}
    )
    assert all("s3cr3t" not in f.message for f in raw)


def test_naming_the_public_index_is_no_override(rules):
    found, _ = findings(rules, {"requirements.txt": "--index-url https://pypi.org/simple\nsix==1.16.0\n"})
    assert found == []


def test_trusted_hosts_urls_vcs_and_paths_are_high(rules):
    found, _ = findings(
        rules,
        {
            "requirements.txt": (
                "--trusted-host pkgs.corp.example\n"
                "git+https://example.com/repo.git#egg=x\n"
                "pkg @ https://example.com/pkg.zip\n"
                "./vendor/lib\n"
            )
        },
    )
    assert {(r, s) for r, s, _f, _l in found} == {
        ("dependency.insecure-index", "high"),
        ("dependency.direct-url", "high"),
    }
    assert len([f for f in found if f[0] == "dependency.direct-url"]) == 3


def test_npmrc_registries_and_poetry_sources(rules):
    found, _ = findings(
        rules,
        {
            ".npmrc": "@acme:registry=https://npm.corp.example/\nregistry=https://registry.npmjs.org/\nstrict-ssl=false\n",
            "pyproject.toml": (
                '[tool.poetry.dependencies]\npython = "^3.11"\nacme = "1.0"\n\n'
                '[[tool.poetry.source]]\nname = "corp"\nurl = "https://pypi.corp.example/simple"\n'
            ),
        },
    )
    rules_found = {(r, f) for r, _s, f, _l in found}
    assert ("dependency.index-override", ".npmrc") in rules_found
    assert ("dependency.insecure-index", ".npmrc") in rules_found
    assert ("dependency.index-override", "pyproject.toml") in rules_found
    assert len([f for f in found if f[0] == "dependency.index-override" and f[2] == ".npmrc"]) == 1  # public one not


def test_lock_files_and_hashes_are_credited(rules):
    _found, raw = findings(
        rules,
        {
            "requirements.txt": "--require-hashes\nsix==1.16.0 --hash=sha256:aaaa\nidna==3.7 --hash=sha256:bbbb\n",
            "package.json": '{"dependencies": {"lodash": "^4.17.21"}}',
            "package-lock.json": '{"lockfileVersion": 3, "packages": {"node_modules/lodash": {"version": "4.17.21"}}}',
        },
    )
    credits = sorted((f.file, f.message) for f in raw if f.rule_id == "dependency.locked")
    assert [c[0] for c in credits] == ["package-lock.json", "requirements.txt"]
    assert "--require-hashes" in credits[1][1]
    assert all(f.severity.value == "info" for f in raw if f.rule_id == "dependency.locked")
    partial, _ = findings(rules, {"requirements.txt": "six==1.16.0 --hash=sha256:aaaa\nidna==3.7\n"})
    assert [f for f in partial if f[0] == "dependency.locked"] == []
