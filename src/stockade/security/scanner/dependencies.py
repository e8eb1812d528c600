"""Dependency findings: known-vulnerable versions (against advisories) and unpinned declarations."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping

from stockade.security.scanner.advisories import Advisory, Affected
from stockade.security.scanner.findings import Dependency, Finding, Severity
from stockade.security.scanner.ranges import match_range
from stockade.security.scanner.rules import RuleBook
from stockade.security.scanner.versions import scheme_for

__all__ = ["AdvisoryIndex", "advisory_coverage_findings", "match_dependencies", "unpinned_findings"]


class AdvisoryIndex:
    """Advisories by (ecosystem, normalized package name), in memory."""

    def __init__(self, advisories: Iterable[Advisory] = ()) -> None:
        self._by_package: dict[tuple[str, str], dict[str, Advisory]] = defaultdict(dict)
        for advisory in advisories:
            self.add(advisory)

    def add(self, advisory: Advisory) -> None:
        """Index ``advisory`` under each package it affects (a newer copy replaces an older one)."""
        for key in advisory.packages:
            self._by_package[key][advisory.id] = advisory

    def lookup(self, ecosystem: str, normalized: str) -> list[Advisory]:
        """Advisories that name this package."""
        return list(self._by_package.get((ecosystem, normalized), {}).values())

    def __len__(self) -> int:
        return len({a.id for per in self._by_package.values() for a in per.values()})


def match_dependencies(dependencies: Iterable[Dependency], index: AdvisoryIndex, rules: RuleBook) -> list[Finding]:
    """One finding per (dependency version, advisory) that affects it."""
    findings: list[Finding] = []
    seen: set[tuple[str, str, str, str]] = set()
    # The action's own declarations first, so a finding points at the line the author wrote.
    for dep in sorted(dependencies, key=lambda d: (not d.direct, d.vendored)):
        if scheme_for(dep.ecosystem) is None:
            continue
        if dep.version is None:
            findings += _range_findings(dep, index, rules, seen)
            continue
        for advisory, affected in _affecting(dep, index):
            key = (dep.ecosystem, dep.normalized, dep.version, advisory.id)
            if key in seen or not affected.matches(dep.version):
                continue
            seen.add(key)
            fixed = ", ".join(affected.fixed) if affected.fixed else "no fixed version is known"
            findings.append(
                rules.finding(
                    "dependency.vulnerable",
                    f"{dep.name} {dep.version} is affected by {_advisory_text(advisory)}; fixed in: {fixed}",
                    severity=advisory.severity,
                    file=dep.source,
                    line=dep.line,
                    package=dep.name,
                    version=dep.version,
                    ecosystem=dep.ecosystem,
                    advisory=advisory.ref(affected),
                    source=f"osv:{advisory.id}",
                )
            )
    return findings


def _affecting(dep: Dependency, index: AdvisoryIndex) -> Iterator[tuple[Advisory, Affected]]:
    """Each (advisory, affected entry) of ``dep``'s package, withdrawn advisories left out."""
    for advisory in index.lookup(dep.ecosystem, dep.normalized):
        if advisory.withdrawn:
            continue
        for affected in advisory.affected:
            if (affected.ecosystem, affected.normalized) == (dep.ecosystem, dep.normalized):
                yield advisory, affected


def _advisory_text(advisory: Advisory) -> str:
    """``ID (aliases): summary``, as findings name an advisory."""
    ids = ", ".join(advisory.aliases)
    return advisory.id + (f" ({ids})" if ids else "") + (f": {advisory.summary}" if advisory.summary else "")


def _range_findings(
    dep: Dependency, index: AdvisoryIndex, rules: RuleBook, seen: set[tuple[str, str, str, str]]
) -> list[Finding]:
    """An unpinned direct declaration whose range admits an affected version, per advisory."""
    if not dep.direct or dep.vendored or not dep.specifier:
        return []
    findings: list[Finding] = []
    for advisory, affected in _affecting(dep, index):
        key = (dep.ecosystem, dep.normalized, dep.specifier, advisory.id)
        if key in seen:
            continue
        match = match_range(dep.ecosystem, dep.specifier, affected)
        if match is None:
            continue
        seen.add(key)
        if match.safe_bound is not None:
            advice = f"require {dep.name}>={match.safe_bound} (the minimal safe bound)"
        else:
            advice = "no fixed version is known: remove or replace the dependency"
        findings.append(
            rules.finding(
                "dependency.vulnerable-range",
                f"{dep.name} {dep.specifier} admits {match.witness}, affected by {_advisory_text(advisory)}; {advice}",
                # A range that cannot resolve to a safe version is as bad as a vulnerable pin.
                severity=None if match.admits_safe else (advisory.severity or Severity.HIGH),
                file=dep.source,
                line=dep.line,
                package=dep.name,
                version=match.safe_bound,
                ecosystem=dep.ecosystem,
                advisory=advisory.ref(affected),
                source=f"osv:{advisory.id}",
            )
        )
    return findings


def unpinned_findings(dependencies: Iterable[Dependency], rules: RuleBook) -> list[Finding]:
    """Direct declarations that neither pin an exact version nor are fixed by a lock or vendored copy."""
    return [
        rules.finding(
            "dependency.unpinned",
            f"{dep.name} {dep.specifier or '(any version)'} is not pinned to an exact version "
            "and no lock file or vendored copy fixes it",
            file=dep.source,
            line=dep.line,
            package=dep.name,
            ecosystem=dep.ecosystem,
        )
        for dep in dependencies
        if dep.version is None and dep.direct and not dep.vendored
    ]


def advisory_coverage_findings(
    dependencies: Iterable[Dependency],
    coverage: Mapping[str, tuple[int, int | None]],
    rules: RuleBook,
    *,
    now_ms: int | None = None,
    max_age_ms: int | None = None,
) -> list[Finding]:
    """A finding per ecosystem whose dependencies could not be checked (no advisories) or were
    checked against data older than ``max_age_ms``. ``coverage``: ecosystem → (advisories, last
    sync or import time in ms, None when unknown)."""
    needed: dict[str, int] = {}
    for dep in dependencies:
        if scheme_for(dep.ecosystem) is not None:
            needed[dep.ecosystem] = needed.get(dep.ecosystem, 0) + 1
    findings: list[Finding] = []
    for ecosystem, count in sorted(needed.items()):
        advisories, last = coverage.get(ecosystem, (0, None))
        if advisories == 0:
            findings.append(
                rules.finding(
                    "advisories.unavailable",
                    f"the dependency check did not run for {count} {ecosystem} dependency(ies): no {ecosystem} "
                    "advisories are loaded (run `stockade advisories sync`, or pass --advisories to `stockade scan`)",
                    ecosystem=ecosystem,
                )
            )
        elif now_ms is not None and max_age_ms is not None and last is not None and now_ms - last > max_age_ms:
            days = (now_ms - last) // 86_400_000
            findings.append(
                rules.finding(
                    "advisories.stale",
                    f"{ecosystem} advisories were last updated {days} day(s) ago (limit "
                    f"{max_age_ms // 86_400_000}); recent vulnerabilities may be missed: run `stockade advisories sync`",
                    ecosystem=ecosystem,
                )
            )
    return findings
