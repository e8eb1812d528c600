"""Version ordering per ecosystem and OSV range evaluation."""

import pytest

from stockade.security.scanner import SemVer, is_affected_version, normalize_package_name


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0", "2.0.0"),
        ("1.9.0", "1.10.0"),
        ("1.0.0-alpha", "1.0.0"),
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
        ("1.0.0-alpha.beta", "1.0.0-beta"),
        ("1.0.0-beta.2", "1.0.0-beta.11"),
        ("1.0.0-rc.1", "1.0.0"),
        ("0.0.0-0", "0.0.0"),
    ],
)
def test_semver_precedence_follows_the_spec(lower, higher):
    assert SemVer.parse(lower) < SemVer.parse(higher)
    assert not SemVer.parse(higher) < SemVer.parse(lower)


def test_semver_ignores_build_metadata_and_accepts_a_v_prefix():
    assert SemVer.parse("v1.2.3+build.5") == SemVer.parse("1.2.3")
    assert hash(SemVer.parse("=1.2.3")) == hash(SemVer.parse("1.2.3+x"))
    assert SemVer.parse("1.2.3").__lt__("1.2.3") is NotImplemented
    assert SemVer.parse("1.2.3").__eq__("1.2.3") is NotImplemented


@pytest.mark.parametrize("text", ["1.2", "^1.2.3", "01.2.3", "1.2.3-", "latest", ">=1.0.0", "1.2.3.4"])
def test_semver_rejects_ranges_and_malformed_versions(text):
    with pytest.raises(ValueError, match="not a semantic version"):
        SemVer.parse(text)


def test_package_names_normalise_per_ecosystem():
    assert normalize_package_name("PyPI", "Flask_SQLAlchemy") == "flask-sqlalchemy"
    assert normalize_package_name("PyPI", " zope.interface ") == "zope-interface"
    assert normalize_package_name("npm", "JSONStream") == "JSONStream"


def affected(ecosystem, version, events, versions=(), range_type=None):
    kind = range_type or ("SEMVER" if ecosystem == "npm" else "ECOSYSTEM")
    return is_affected_version(ecosystem, version, versions=versions, ranges=[(kind, events)])


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.9.0", False),
        ("1.0.0", True),
        ("1.4.9", True),
        ("1.5.0", False),
        ("2.0.0", True),
        ("2.1.0", True),
        ("2.1.1", False),
    ],
)
def test_npm_ranges_open_at_introduced_close_at_fixed_and_after_last_affected(version, expected):
    events = [("introduced", "1.0.0"), ("fixed", "1.5.0"), ("introduced", "2.0.0"), ("last_affected", "2.1.0")]
    assert affected("npm", version, events) is expected


def test_introduced_zero_covers_every_version_including_prereleases():
    assert affected("npm", "0.0.1-alpha", [("introduced", "0"), ("fixed", "1.0.0")])
    assert affected("PyPI", "0.1.dev1", [("introduced", "0"), ("fixed", "1.0")])
    assert not affected("PyPI", "1.0", [("introduced", "0"), ("fixed", "1.0")])


@pytest.mark.parametrize(
    ("version", "expected"),
    [("2.2.1", True), ("2.3.0rc1", True), ("2.3.0", False), ("2.3", False), ("1!0.1", False), ("0.12.01", True)],
)
def test_pypi_ranges_use_pep440_ordering(version, expected):
    assert affected("PyPI", version, [("introduced", "0"), ("fixed", "2.3.0")]) is expected


def test_explicit_versions_match_exactly_or_by_pep440_equality():
    assert is_affected_version("PyPI", "1.0", versions=["1.0.0"], ranges=[])
    assert is_affected_version("PyPI", "weird-version", versions=["weird-version"], ranges=[])
    assert not is_affected_version("PyPI", "1.0.1", versions=["1.0.0", "not a version"], ranges=[])


def test_unparsable_bounds_and_git_ranges_are_skipped_not_fatal():
    assert not affected("PyPI", "1.0", [("introduced", "not-a-version")])
    assert not affected("npm", "1.0.0", [("introduced", "0")], range_type="GIT")
    assert not affected("npm", "banana", [("introduced", "0")])
    assert affected("npm", "1.0.0", [("introduced", "0"), ("limit", "2.0.0")])


def test_unknown_ecosystems_match_only_listed_versions():
    assert not is_affected_version("Go", "1.0.0", versions=[], ranges=[("SEMVER", [("introduced", "0")])])
    assert is_affected_version("Go", "1.0.0", versions=["1.0.0"], ranges=[])
