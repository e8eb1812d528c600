"""What a scan produces: severities, findings, the dependency inventory and the ScanReport."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, final

__all__ = ["AdvisoryRef", "Dependency", "Finding", "ScanReport", "Severity", "parse_severities"]


class Severity(enum.StrEnum):
    """Finding severities, most severe first."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """4 for critical down to 0 for info."""
        return _RANK[self]

    @classmethod
    def at_least(cls, floor: Severity) -> frozenset[Severity]:
        """Every severity as severe as ``floor`` or more."""
        return frozenset(s for s in cls if s.rank >= floor.rank)


_RANK = {Severity.CRITICAL: 4, Severity.HIGH: 3, Severity.MEDIUM: 2, Severity.LOW: 1, Severity.INFO: 0}


def parse_severities(text: str | Iterable[str]) -> frozenset[Severity]:
    """``"critical,high"`` or ``["critical", "high"]`` → a set; ValueError names a bad entry."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: set[Severity] = set()
    for item in items:
        name = str(item).strip().lower()
        if not name:
            continue
        try:
            out.add(Severity(name))
        except ValueError:
            raise ValueError(f"unknown severity {item!r} (use critical, high, medium, low or info)") from None
    return frozenset(out)


@final
@dataclass(frozen=True, slots=True)
class AdvisoryRef:
    """The advisory behind a vulnerable-dependency finding."""

    id: str
    aliases: tuple[str, ...] = ()
    fixed_versions: tuple[str, ...] = ()
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id,
            "aliases": list(self.aliases),
            "fixed": list(self.fixed_versions),
            "summary": self.summary,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> AdvisoryRef:
        """Inverse of ``to_json``."""
        return cls(
            str(doc["id"]),
            tuple(str(a) for a in doc.get("aliases") or ()),
            tuple(str(v) for v in doc.get("fixed") or ()),
            str(doc.get("summary") or ""),
        )


@final
@dataclass(frozen=True, slots=True)
class Dependency:
    """A package an action brings: declared in a manifest, locked, or vendored in the bundle."""

    ecosystem: str  # "PyPI" or "npm", as OSV names them
    name: str  # as written
    normalized: str  # the advisory index key
    version: str | None  # exact version when known (pinned, locked or vendored)
    specifier: str  # what the manifest said ("==1.2", "^1.2.3", "" for vendored)
    source: str  # file the dependency comes from
    line: int | None = None
    vendored: bool = False
    direct: bool = True  # declared by the action itself (not a transitive lock entry)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "ecosystem": self.ecosystem,
            "name": self.name,
            "normalized": self.normalized,
            "version": self.version,
            "specifier": self.specifier,
            "source": self.source,
            "line": self.line,
            "vendored": self.vendored,
            "direct": self.direct,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Dependency:
        """Inverse of ``to_json``."""
        line = doc.get("line")
        return cls(
            ecosystem=str(doc["ecosystem"]),
            name=str(doc["name"]),
            normalized=str(doc["normalized"]),
            version=None if doc.get("version") is None else str(doc["version"]),
            specifier=str(doc.get("specifier") or ""),
            source=str(doc.get("source") or ""),
            line=int(line) if isinstance(line, int) else None,
            vendored=bool(doc.get("vendored")),
            direct=bool(doc.get("direct", True)),
        )


@final
@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found: which rule, how severe, where, and (for dependencies) which advisory."""

    rule_id: str
    severity: Severity
    message: str
    file: str | None = None
    line: int | None = None
    package: str | None = None
    version: str | None = None
    ecosystem: str | None = None
    advisory: AdvisoryRef | None = None
    # The analyser's own id (bandit test id, ESLint rule, detect-secrets plugin) for triage.
    source: str | None = None

    @property
    def location(self) -> str:
        """``file:line``, ``file`` or ``-``."""
        if self.file is None:
            return "-"
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def to_json(self) -> dict[str, Any]:
        """JSON form (stable keys, used by the API and the store)."""
        return {
            "rule": self.rule_id,
            "severity": self.severity.value,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "package": self.package,
            "version": self.version,
            "ecosystem": self.ecosystem,
            "advisory": self.advisory.to_json() if self.advisory is not None else None,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Finding:
        """Inverse of ``to_json``."""
        line = doc.get("line")
        advisory = doc.get("advisory")
        return cls(
            rule_id=str(doc["rule"]),
            severity=Severity(doc["severity"]),
            message=str(doc["message"]),
            file=None if doc.get("file") is None else str(doc["file"]),
            line=int(line) if isinstance(line, int) else None,
            package=doc.get("package"),
            version=doc.get("version"),
            ecosystem=doc.get("ecosystem"),
            advisory=AdvisoryRef.from_json(advisory) if isinstance(advisory, Mapping) else None,
            source=doc.get("source"),
        )

    def describe(self) -> str:
        """One line for people: ``[high] rule file:line message``."""
        return f"[{self.severity.value}] {self.rule_id} {self.location}: {self.message}"


def _sort_key(finding: Finding) -> tuple[int, str, str, int, str]:
    return (-finding.severity.rank, finding.rule_id, finding.file or "", finding.line or 0, finding.message)


@final
@dataclass(frozen=True, slots=True)
class ScanReport:
    """The outcome of scanning one action: findings (most severe first) and what it depends on."""

    findings: tuple[Finding, ...] = ()
    dependencies: tuple[Dependency, ...] = ()
    files_scanned: int = 0
    duration_ms: int = 0
    target: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(set(self.findings), key=_sort_key))
        object.__setattr__(self, "findings", ordered)

    def with_findings(self, extra: Iterable[Finding]) -> ScanReport:
        """This report plus ``extra`` findings (duplicates collapse)."""
        return ScanReport(
            (*self.findings, *extra), self.dependencies, self.files_scanned, self.duration_ms, self.target, self.notes
        )

    def matching(self, severities: frozenset[Severity]) -> list[Finding]:
        """Findings whose severity is in ``severities``."""
        return [f for f in self.findings if f.severity in severities]

    def counts(self) -> dict[str, int]:
        """Findings per severity (every severity present, zero included)."""
        out = {s.value: 0 for s in Severity}
        for finding in self.findings:
            out[finding.severity.value] += 1
        return out

    def advisory_ids(self) -> frozenset[str]:
        """Ids of every advisory a finding cites."""
        return frozenset(f.advisory.id for f in self.findings if f.advisory is not None)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "target": self.target,
            "findings": [f.to_json() for f in self.findings],
            "counts": self.counts(),
            "dependencies": [d.to_json() for d in self.dependencies],
            "filesScanned": self.files_scanned,
            "durationMs": self.duration_ms,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ScanReport:
        """Inverse of ``to_json``."""
        return cls(
            findings=tuple(Finding.from_json(f) for f in doc.get("findings") or ()),
            dependencies=tuple(Dependency.from_json(d) for d in doc.get("dependencies") or ()),
            files_scanned=int(doc.get("filesScanned") or 0),
            duration_ms=int(doc.get("durationMs") or 0),
            target=str(doc.get("target") or ""),
            notes=tuple(str(n) for n in doc.get("notes") or ()),
        )
