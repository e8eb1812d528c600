"""Version ordering per ecosystem and OSV range evaluation.

PyPI versions follow PEP 440 (``packaging``); npm versions follow SemVer 2.0.0 precedence,
implemented here. ``is_affected`` evaluates an OSV ``affected`` entry the way the OSV schema
specifies: explicit ``versions`` match exactly, and each ECOSYSTEM/SEMVER range is walked over
its events in version order (introduced opens, fixed closes at, last_affected closes after).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import total_ordering
from typing import Any, final

from packaging.version import InvalidVersion, Version

__all__ = ["SemVer", "VersionScheme", "is_affected_version", "normalize_package_name", "scheme_for"]

_SEMVER_RE = re.compile(
    r"^\s*[v=]*\s*(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\s*$"
)
_PEP503_RE = re.compile(r"[-_.]+")


def normalize_package_name(ecosystem: str, name: str) -> str:
    """The index key of a package: PEP 503 for PyPI; npm names are exact (trimmed)."""
    name = name.strip()
    if ecosystem == "PyPI":
        return _PEP503_RE.sub("-", name).lower()
    return name


@final
@total_ordering
@dataclass(frozen=True, slots=True)
class SemVer:
    """A SemVer 2.0.0 version; build metadata is kept but ignored for precedence."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        """Parse ``1.2.3``, ``v1.2.3-rc.1+build``; ValueError for anything else."""
        match = _SEMVER_RE.match(text)
        if match is None:
            raise ValueError(f"not a semantic version: {text!r}")
        major, minor, patch, pre, build = match.groups()
        identifiers: tuple[int | str, ...] = ()
        if pre:
            identifiers = tuple(int(p) if p.isdigit() else p for p in pre.split("."))
        return cls(int(major), int(minor), int(patch), identifiers, build or "")

    def _key(self) -> tuple[Any, ...]:
        # A version without prerelease sorts after all its prereleases; numeric identifiers sort
        # before alphanumeric ones, each compared in its own way; a shorter list sorts first.
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 1 if not pre else 0, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@final
@dataclass(frozen=True, slots=True)
class VersionScheme:
    """How one ecosystem parses versions; ``parse`` raises ValueError on a version it cannot order."""

    name: str
    parse: Callable[[str], Any]
    zero: Any  # what OSV's "introduced": "0" means: before every version


def _pep440(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise ValueError(f"not a PEP 440 version: {text!r}") from None


_SCHEMES = {
    "PyPI": VersionScheme("PyPI", _pep440, Version("0.dev0")),
    "npm": VersionScheme("npm", SemVer.parse, SemVer(0, 0, 0, (0,))),
}


def scheme_for(ecosystem: str) -> VersionScheme | None:
    """The version scheme of ``ecosystem``, or None for ecosystems the gate does not scan."""
    return _SCHEMES.get(ecosystem)


@functools.lru_cache(maxsize=65536)
def _parsed(ecosystem: str, text: str) -> Any:
    """The parsed version, or None when it does not parse (cached: advisories repeat versions)."""
    scheme = _SCHEMES[ecosystem]
    try:
        return scheme.parse(text)
    except ValueError:
        return None


def _event_version(scheme: VersionScheme, text: str) -> Any:
    if text == "0":
        return scheme.zero
    parsed = _parsed(scheme.name, text)
    if parsed is None:
        raise ValueError(f"unparsable range bound {text!r}")
    return parsed


def _in_range(scheme: VersionScheme, version: Any, events: Sequence[tuple[str, str]]) -> bool:
    """OSV's algorithm over one range's (kind, version) events; raises ValueError if unparsable."""
    parsed = sorted(
        ((_event_version(scheme, value), kind) for kind, value in events if kind != "limit"),
        # At equal versions, apply "introduced" before the closing events.
        key=lambda item: (item[0], item[1] != "introduced"),
    )
    affected = False
    for event_version, kind in parsed:
        if kind == "introduced" and version >= event_version:
            affected = True
        elif (kind == "fixed" and version >= event_version) or (kind == "last_affected" and version > event_version):
            affected = False
    return affected


def is_affected_version(
    ecosystem: str,
    version: str,
    *,
    versions: Iterable[str],
    ranges: Iterable[tuple[str, Sequence[tuple[str, str]]]],
) -> bool:
    """True when ``version`` is listed in ``versions`` or falls in one of the ``ranges``.

    ``ranges`` are (type, events) with OSV range types; GIT ranges are ignored (they name
    commits, not releases). A range whose bounds do not parse in the ecosystem's scheme is
    skipped; the explicit list still applies.
    """
    listed = set(versions)
    if version in listed:
        return True
    scheme = scheme_for(ecosystem)
    if scheme is None:
        return False
    parsed = _parsed(ecosystem, version)
    if parsed is None:
        return False  # an unorderable version matches only by exact listing
    if any(_parsed(ecosystem, text) == parsed for text in listed):  # e.g. PEP 440 "1.0" == "1.0.0"
        return True
    for range_type, events in ranges:
        if range_type not in ("ECOSYSTEM", "SEMVER"):
            continue
        try:
            if _in_range(scheme, parsed, events):
                return True
        except (ValueError, TypeError):
            continue
    return False
