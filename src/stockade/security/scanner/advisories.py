"""OSV advisories: the model, a strict parser, CVSS v3 scoring, and reading OSV files from disk.

Only the fields the gate needs are modelled; the whole document is kept for storage. Parsing
is defensive: a document that is not OSV-shaped raises AdvisoryError with the reason, so an
import reports it and goes on with the rest.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, final

import yaml

from stockade.security.scanner.archives import ArchiveError, iter_archive_members
from stockade.security.scanner.findings import AdvisoryRef, Severity
from stockade.security.scanner.versions import is_affected_version, normalize_package_name

__all__ = [
    "Advisory",
    "AdvisoryError",
    "Affected",
    "cvss3_base_score",
    "iter_osv_documents",
    "parse_osv",
    "parse_osv_text",
]

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024  # the largest real OSV entries are a few hundred KiB


class AdvisoryError(ValueError):
    """A document is not a usable OSV advisory."""


@final
@dataclass(frozen=True, slots=True)
class Affected:
    """One affected package of an advisory: its ranges and explicit versions."""

    ecosystem: str
    name: str
    normalized: str
    ranges: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    versions: frozenset[str]
    fixed: tuple[str, ...]

    def matches(self, version: str) -> bool:
        """True when ``version`` of this package is affected."""
        return is_affected_version(self.ecosystem, version, versions=self.versions, ranges=self.ranges)


@final
@dataclass(frozen=True, slots=True)
class Advisory:
    """An OSV advisory reduced to what matching and reporting need; ``doc`` is the original."""

    id: str
    modified: str
    aliases: tuple[str, ...]
    summary: str
    severity: Severity | None
    affected: tuple[Affected, ...]
    withdrawn: bool
    doc: Mapping[str, Any]

    @property
    def packages(self) -> tuple[tuple[str, str], ...]:
        """Distinct (ecosystem, normalized name) pairs, the index keys."""
        return tuple(dict.fromkeys((a.ecosystem, a.normalized) for a in self.affected))

    def ref(self, affected: Affected) -> AdvisoryRef:
        """The reference a finding carries."""
        return AdvisoryRef(self.id, self.aliases, affected.fixed, self.summary)


def _text(value: Any, what: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if isinstance(value, dt.datetime | dt.date):  # YAML timestamps
        return value.isoformat().replace("+00:00", "Z")
    if not isinstance(value, str | int | float) or isinstance(value, bool) or (required and not str(value).strip()):
        raise AdvisoryError(f"'{what}' must be a non-empty string")
    return str(value)


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AdvisoryError(f"'{what}' must be a list")
    return value


# CVSS v3.x base metrics (FIRST specification, section 7.4).
_CVSS3 = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_PR = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def _roundup(value: float) -> float:
    """CVSS 3.1 Roundup: the smallest one-decimal number ≥ value, free of float noise."""
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000
    return (math.floor(scaled / 10_000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float:
    """The base score of a ``CVSS:3.x/...`` vector; ValueError if it is not one."""
    parts = vector.strip().split("/")
    if not parts or not parts[0].startswith("CVSS:3"):
        raise ValueError("not a CVSS v3 vector")
    metrics = dict(p.split(":", 1) for p in parts[1:] if ":" in p)
    try:
        scope = metrics["S"]
        av, ac, ui = (_CVSS3[k][metrics[k]] for k in ("AV", "AC", "UI"))
        c, i, a = (_CVSS3[k][metrics[k]] for k in ("C", "I", "A"))
        pr = _PR[scope][metrics["PR"]]
    except KeyError:
        raise ValueError("incomplete CVSS v3 vector") from None
    iss = 1 - (1 - c) * (1 - i) * (1 - a)
    impact = 6.42 * iss if scope == "U" else 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    exploitability = 8.22 * av * ac * pr * ui
    if impact <= 0:
        return 0.0
    total = impact + exploitability if scope == "U" else 1.08 * (impact + exploitability)
    return _roundup(min(total, 10.0))


def _severity_of_score(score: float) -> Severity | None:
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0:
        return Severity.LOW
    return None


_DATABASE_SEVERITY = {"CRITICAL": Severity.CRITICAL, "HIGH": Severity.HIGH, "MODERATE": Severity.MEDIUM}
_DATABASE_SEVERITY |= {"MEDIUM": Severity.MEDIUM, "LOW": Severity.LOW}


def _severity(doc: Mapping[str, Any]) -> Severity | None:
    """The advisory's severity: a CVSS v3 vector's score, else the database's word, else None."""
    for entry in _list(doc.get("severity"), "severity"):
        if isinstance(entry, Mapping) and str(entry.get("type", "")).startswith("CVSS_V3"):
            try:
                return _severity_of_score(cvss3_base_score(str(entry.get("score", ""))))
            except ValueError:
                continue
    specific = doc.get("database_specific")
    if isinstance(specific, Mapping):
        word = str(specific.get("severity", "")).upper()
        if word in _DATABASE_SEVERITY:
            return _DATABASE_SEVERITY[word]
    return None


def _affected(entry: Any) -> Affected | None:
    if not isinstance(entry, Mapping):
        raise AdvisoryError("each 'affected' entry must be an object")
    package = entry.get("package")
    if not isinstance(package, Mapping):
        return None  # OSV allows affected entries without a package (e.g. git-only)
    ecosystem = _text(package.get("ecosystem"), "affected.package.ecosystem", required=True)
    name = _text(package.get("name"), "affected.package.name", required=True)
    ranges = []
    fixed: list[str] = []
    for raw in _list(entry.get("ranges"), "affected.ranges"):
        if not isinstance(raw, Mapping):
            raise AdvisoryError("each range must be an object")
        range_type = _text(raw.get("type"), "range.type", required=True)
        events = []
        for event in _list(raw.get("events"), "range.events"):
            if not isinstance(event, Mapping) or len(event) != 1:
                raise AdvisoryError("each range event must have exactly one key")
            ((kind, value),) = event.items()
            if kind not in ("introduced", "fixed", "last_affected", "limit"):
                raise AdvisoryError(f"unknown range event {kind!r}")
            text = _text(value, f"range event {kind}", required=True)
            events.append((str(kind), text))
            if kind == "fixed" and range_type != "GIT":
                fixed.append(text)
        ranges.append((range_type, tuple(events)))
    versions = frozenset(_text(v, "affected.versions", required=True) for v in _list(entry.get("versions"), "versions"))
    return Affected(
        ecosystem,
        name,
        normalize_package_name(ecosystem, name),
        tuple(ranges),
        versions,
        tuple(dict.fromkeys(fixed)),
    )


def parse_osv(doc: Any) -> Advisory:
    """An Advisory from an OSV document (already decoded); AdvisoryError explains a refusal."""
    if not isinstance(doc, Mapping):
        raise AdvisoryError("an OSV advisory must be an object")
    if not isinstance(doc.get("id"), str):
        raise AdvisoryError("'id' must be a non-empty string")
    advisory_id = _text(doc.get("id"), "id", required=True)
    if len(advisory_id) > 200:
        raise AdvisoryError("'id' is too long")
    affected = tuple(a for a in (_affected(e) for e in _list(doc.get("affected"), "affected")) if a is not None)
    summary = _text(doc.get("summary"), "summary") or _text(doc.get("details"), "details")
    return Advisory(
        id=advisory_id,
        modified=_text(doc.get("modified"), "modified"),
        aliases=tuple(_text(a, "aliases", required=True) for a in _list(doc.get("aliases"), "aliases")),
        summary=" ".join(summary.split())[:300],
        severity=_severity(doc),
        affected=affected,
        withdrawn=bool(doc.get("withdrawn")),
        doc=doc,
    )


def _jsonable(value: Any) -> Any:
    """YAML-decoded data as JSON types (timestamps become ISO strings)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# The safe loader, in C when libyaml is present (10x faster than the Python one on large dumps).
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _safe_load_yaml(text: str | bytes) -> Any:
    """What ``yaml.safe_load`` does, with the C safe loader when available: no Python objects."""
    loader = _SAFE_LOADER(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def parse_osv_text(text: str | bytes, name: str) -> dict[str, Any]:
    """Decode one OSV file (JSON, or YAML through the safe loader) into a JSON-typed document."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise AdvisoryError(f"{name}: larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        data = _safe_load_yaml(text) if name.endswith((".yaml", ".yml")) else json.loads(text)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        raise AdvisoryError(
            f"{name}: not valid {'YAML' if name.endswith(('.yaml', '.yml')) else 'JSON'}: {exc}"
        ) from None
    if not isinstance(data, Mapping):
        raise AdvisoryError(f"{name}: not an OSV object")
    result: dict[str, Any] = _jsonable(data)
    return result


_OSV_SUFFIXES = (".json", ".yaml", ".yml")


def iter_osv_documents(path: Path) -> Iterator[tuple[str, dict[str, Any] | AdvisoryError]]:
    """(name, document or the error) for every OSV file in a directory, file, .zip or .tar.gz."""
    try:
        for name, data in iter_archive_members(path, suffixes=_OSV_SUFFIXES, max_member_bytes=MAX_DOCUMENT_BYTES):
            if isinstance(data, ArchiveError):
                yield name, AdvisoryError(str(data))
                continue
            try:
                yield name, parse_osv_text(data, name)
            except AdvisoryError as exc:
                yield name, exc
    except ArchiveError as exc:
        yield str(path), AdvisoryError(str(exc))
