"""Dependency findings: known-vulnerable versions (against advisories) and unpinned declarations."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from stockade.security.scanner.advisories import Advisory
from stockade.security.scanner.findings import Dependency, Finding
from stockade.security.scanner.rules import RuleBook
from stockade.security.scanner.versions import scheme_for

__all__ = ["AdvisoryIndex", "match_dependencies", "unpinned_findings"]


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
        if dep.version is None or scheme_for(dep.ecosystem) is None:
            continue
        for advisory in index.lookup(dep.ecosystem, dep.normalized):
            if advisory.withdrawn:
                continue
            for affected in advisory.affected:
                if (affected.ecosystem, affected.normalized) != (dep.ecosystem, dep.normalized):
                    continue
                key = (dep.ecosystem, dep.normalized, dep.version, advisory.id)
                if key in seen or not affected.matches(dep.version):
                    continue
                seen.add(key)
                ids = ", ".join(advisory.aliases)
                fixed = ", ".join(affected.fixed) if affected.fixed else "no fixed version is known"
                findings.append(
                    rules.finding(
                        "dependency.vulnerable",
                        f"{dep.name} {dep.version} is affected by {advisory.id}"
                        + (f" ({ids})" if ids else "")
                        + (f": {advisory.summary}" if advisory.summary else "")
                        + f"; fixed in: {fixed}",
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
