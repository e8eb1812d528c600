"""Version ranges in manifests (``>=2.0``, ``~=2.28``, ``^1.2.3``, ``1.x``) against advisories.

A range admits a vulnerable version when some version both satisfies it and is affected. The
versions tried are the ones that bound either side (the range's own bounds, just above each
of them, and the advisory's introduced / last-affected / listed versions): if the range and
an affected interval overlap, the larger of their lower bounds is one of these. The minimal
safe bound is the highest ``fixed`` of the affected ranges the specifier overlaps (None when
one of them has no fix).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, final

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from stockade.security.scanner.advisories import Affected
from stockade.security.scanner.versions import SemVer, is_affected_version

__all__ = ["RangeMatch", "admits", "match_range"]

_NUMBER_RE = re.compile(r"\d+(?:\.\d+)*(?:[-.+]?[A-Za-z0-9]+(?:\.\d+)*)*")


@final
@dataclass(frozen=True, slots=True)
class RangeMatch:
    """A range admitting an affected version: one such version, and the minimal safe bound."""

    witness: str
    safe_bound: str | None
    admits_safe: bool  # the range also admits the safe bound (a resolver may pick a safe version)


# npm ranges ---------------------------------------------------------------------------------------

_NPM_PART_RE = re.compile(
    r"^(?P<op><=|>=|<|>|=|\^|~>?|)?\s*v?(?P<ver>[0-9xX*]+(?:\.[0-9xX*]+){0,2}(?:-[0-9A-Za-z.-]+)?)$"
)


def _npm_bounds(op: str, text: str) -> list[tuple[str, SemVer]]:
    """Comparators (op, version) for one npm range token."""
    core, _, pre = text.partition("-")
    raw = core.split(".")
    wild = [p in ("x", "X", "*") for p in raw]
    nums = [0 if w else int(p) for p, w in zip(raw, wild, strict=True)]
    while len(nums) < 3:
        nums.append(0)
        wild.append(True)
    major, minor, patch = nums
    given = wild.index(True) if True in wild else 3
    base = SemVer.parse(f"{major}.{minor}.{patch}" + (f"-{pre}" if pre and given == 3 else ""))
    if op in ("", "=") and given < 3:
        op = "x"
    if op == "^":
        if major > 0 or given <= 1:
            upper = SemVer(major + 1, 0, 0, (0,))
        elif minor > 0 or given == 2:
            upper = SemVer(0, minor + 1, 0, (0,))
        else:
            upper = SemVer(0, 0, patch + 1, (0,))
        return [(">=", base), ("<", upper)]
    if op in ("~", "~>"):
        upper = SemVer(major + 1, 0, 0, (0,)) if given <= 1 else SemVer(major, minor + 1, 0, (0,))
        return [(">=", base), ("<", upper)]
    if op == "x":
        if given == 0:
            return []
        upper = SemVer(major + 1, 0, 0, (0,)) if given == 1 else SemVer(major, minor + 1, 0, (0,))
        return [(">=", base), ("<", upper)]
    return [(op or "=", base)]


def _npm_admits(spec: str, version: SemVer) -> bool | None:
    ops: dict[str, Callable[[Any, Any], bool]] = {
        ">=": lambda a, b: a >= b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        "<": lambda a, b: a < b,
        "=": lambda a, b: a == b,
    }
    for alternative in spec.split("||"):
        text = alternative.strip()
        if text in ("", "*", "latest", "x", "X"):
            return True
        if " - " in text:
            low, high = (p.strip() for p in text.split(" - ", 1))
            text = f">={low} <={high}"
        tokens = re.findall(r"(?:<=|>=|<|>|=|\^|~>?)?\s*v?[0-9xX*][^\s]*", text)
        if not tokens:
            return None
        comparators: list[tuple[str, SemVer]] = []
        for token in tokens:
            match = _NPM_PART_RE.match(token.strip())
            if match is None:
                return None
            try:
                comparators += _npm_bounds(match.group("op") or "", match.group("ver"))
            except ValueError:
                return None
        if all(ops[op](version, bound) for op, bound in comparators):
            return True
    return False


# both ecosystems ----------------------------------------------------------------------------------


def admits(ecosystem: str, spec: str, version: str) -> bool | None:
    """Whether ``spec`` admits ``version``; None when either cannot be read."""
    if ecosystem == "PyPI":
        try:
            return SpecifierSet(spec).contains(Version(version), prereleases=True)
        except (InvalidSpecifier, InvalidVersion):
            return None
    if ecosystem == "npm":
        try:
            return _npm_admits(spec, SemVer.parse(version))
        except ValueError:
            return None
    return None


def _just_above(ecosystem: str, version: str) -> str | None:
    if ecosystem == "PyPI":
        try:
            parsed = Version(version)
        except InvalidVersion:
            return None
        return f"{parsed.base_version}.1" if not parsed.is_prerelease else None
    try:
        sem = SemVer.parse(version)
    except ValueError:
        return None
    return f"{sem.major}.{sem.minor}.{sem.patch + 1}"


def _sort_key(ecosystem: str, version: str) -> Any:
    try:
        return (0, Version(version)) if ecosystem == "PyPI" else (0, SemVer.parse(version))
    except (InvalidVersion, ValueError):
        return (1, version)


def _candidates(ecosystem: str, spec: str, affected: Affected) -> list[str]:
    found: set[str] = set(affected.versions)
    for _type, events in affected.ranges:
        for kind, value in events:
            if kind in ("introduced", "last_affected") and value != "0":
                found.add(value)
    found.add("0.0.0" if ecosystem == "npm" else "0")
    for bound in _NUMBER_RE.findall(spec):
        text = bound
        if ecosystem == "npm":
            digits: list[str] = []
            for part in re.split(r"[.-]", bound)[:3]:
                if not part.isdigit():
                    break
                digits.append(part)
            text = ".".join([*digits, "0", "0", "0"][:3])
        found.add(text)
    for value in list(found):
        above = _just_above(ecosystem, value)
        if above is not None:
            found.add(above)
    return sorted(found, key=lambda v: _sort_key(ecosystem, v))


def match_range(ecosystem: str, spec: str, affected: Affected) -> RangeMatch | None:
    """A RangeMatch when ``spec`` admits a version ``affected`` names, else None."""
    if not spec.strip():
        return None
    witness = None
    for candidate in _candidates(ecosystem, spec, affected):
        if admits(ecosystem, spec, candidate) and is_affected_version(
            ecosystem, candidate, versions=affected.versions, ranges=affected.ranges
        ):
            witness = candidate
            break
    if witness is None:
        return None
    bound = _safe_bound(ecosystem, affected)
    return RangeMatch(witness, bound, bool(bound is not None and admits(ecosystem, spec, bound)))


def _safe_bound(ecosystem: str, affected: Affected) -> str | None:
    fixes: list[str] = []
    for range_type, events in affected.ranges:
        if range_type not in ("ECOSYSTEM", "SEMVER"):
            continue
        fixed = [v for k, v in events if k == "fixed"]
        if not fixed and any(k == "introduced" for k, _v in events):
            return None  # affected with no fix in this range
        fixes += fixed
    if not fixes:
        return None
    return max(fixes, key=lambda v: _sort_key(ecosystem, v))
