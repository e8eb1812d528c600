"""The scan: read the bundle, find dependencies, analyse code, detect secrets, lint policy.

Two phases so that callers can fetch advisories in between (the store is async, the scan is
CPU-bound and pure): ``prepare`` does everything that needs only the action, and returns the
dependency inventory; ``complete`` matches that inventory against the advisories and builds the
ScanReport. Nothing here does I/O except reading the local path given to ``prepare_path`` and
talking to the JavaScript analyser's worker.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

from stockade.security.scanner.advisories import Advisory
from stockade.security.scanner.bundle import Bundle, bundle_from_code, bundle_from_path
from stockade.security.scanner.dependencies import AdvisoryIndex, match_dependencies, unpinned_findings
from stockade.security.scanner.findings import Dependency, Finding, ScanReport
from stockade.security.scanner.js_analysis import JsAnalyser, analyse_javascript
from stockade.security.scanner.manifests import read_manifests
from stockade.security.scanner.policy import lint_policy
from stockade.security.scanner.python_analysis import analyse_python
from stockade.security.scanner.rules import RuleBook, default_rulebook
from stockade.security.scanner.secrets import scan_code_secrets, scan_parameter_secrets

__all__ = ["PreparedScan", "ScanInput", "Scanner"]


@final
@dataclass(frozen=True, slots=True)
class ScanInput:
    """One action as the gate sees it: code, kind family, parameters and annotations."""

    code: str
    binary: bool
    family: str | None  # "python", "nodejs" or None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    annotations: Mapping[str, Any] = field(default_factory=dict)
    target: str = ""


@final
@dataclass(slots=True)
class PreparedScan:
    """Everything but the advisory match: findings so far and the dependency inventory."""

    target: str
    findings: list[Finding]
    dependencies: list[Dependency]
    files_scanned: int
    started: float

    @property
    def packages(self) -> dict[str, list[str]]:
        """Normalized package names per ecosystem, for the advisory lookup."""
        out: dict[str, list[str]] = {}
        for dep in self.dependencies:
            # Unpinned declarations too: their ranges are matched against advisories.
            if dep.normalized not in out.setdefault(dep.ecosystem, []):
                out[dep.ecosystem].append(dep.normalized)
        return out


class Scanner:
    """Runs the gate's checks with one rule book and one JavaScript analyser."""

    def __init__(self, rules: RuleBook | None = None, js: JsAnalyser | None = None) -> None:
        self.rules = rules or default_rulebook()
        self._js = js

    def prepare(self, scan: ScanInput) -> PreparedScan:
        """Phase one for a deployed action's ``exec``."""
        started = time.perf_counter()
        bundle = bundle_from_code(scan.code, binary=scan.binary, family=scan.family, rules=self.rules)
        return self._prepare(bundle, scan.parameters, scan.annotations, scan.target, started)

    def prepare_path(
        self,
        path: Path,
        *,
        parameters: Mapping[str, Any] | None = None,
        annotations: Mapping[str, Any] | None = None,
    ) -> PreparedScan:
        """Phase one for a local directory, .zip or source file (``stockade scan PATH``)."""
        started = time.perf_counter()
        bundle = bundle_from_path(path, self.rules)
        return self._prepare(bundle, parameters or {}, annotations or {}, str(path), started)

    def _prepare(
        self,
        bundle: Bundle,
        parameters: Mapping[str, Any],
        annotations: Mapping[str, Any],
        target: str,
        started: float,
    ) -> PreparedScan:
        rules = self.rules
        findings = list(bundle.findings)
        manifests = read_manifests(bundle, rules)
        findings += manifests.findings
        findings += unpinned_findings(manifests.dependencies, rules)
        sources = bundle.sources()
        if len(sources) > rules.limits.max_analysed_files:
            findings.append(
                rules.finding(
                    "bundle.scan-budget",
                    f"{len(sources)} source files; only the first {rules.limits.max_analysed_files} were analysed",
                )
            )
            sources = sources[: rules.limits.max_analysed_files]
        python_findings, python_count = analyse_python(sources, rules)
        js_findings, js_count = analyse_javascript(sources, rules, self._js)
        findings += python_findings + js_findings
        findings += scan_code_secrets(sources, rules)
        findings += scan_parameter_secrets(parameters, rules)
        findings += lint_policy(
            annotations=annotations, bundle=bundle, dependencies=manifests.dependencies, rules=rules
        )
        return PreparedScan(target, findings, manifests.dependencies, python_count + js_count, started)

    def complete(self, prepared: PreparedScan, advisories: Iterable[Advisory]) -> ScanReport:
        """Phase two: match dependencies against ``advisories`` and build the report."""
        index = AdvisoryIndex(advisories)
        findings = prepared.findings + match_dependencies(prepared.dependencies, index, self.rules)
        return ScanReport(
            findings=tuple(findings),
            dependencies=tuple(dict.fromkeys(prepared.dependencies)),
            files_scanned=prepared.files_scanned,
            duration_ms=round((time.perf_counter() - prepared.started) * 1000),
            target=prepared.target,
        )

    def scan(self, scan: ScanInput, advisories: Iterable[Advisory] = ()) -> ScanReport:
        """Both phases with advisories known up front."""
        return self.complete(self.prepare(scan), advisories)

    def recheck(self, dependencies: Iterable[Dependency], advisories: Iterable[Advisory]) -> list[Finding]:
        """Vulnerable-dependency findings of an existing inventory (continuous monitoring)."""
        return match_dependencies(dependencies, AdvisoryIndex(advisories), self.rules)
