"""Suspicious log patterns: data (``data/suspicious_log_patterns.json``), validated on load.

Each pattern names ``needles``: lower-case substrings a matching line must contain. A line is
lower-cased once and checked for needles (cheap substring tests); only patterns whose needle is
present run their regular expression. Only the first ``MAX_LINE_CHARS`` characters of at most
``MAX_LINES`` lines, and at most ``MAX_SCAN_CHARS`` characters in all, are read per activation, so the cost per activation is bounded whatever the
action prints. FP budget: ≤ 1 flagged activation per 10,000 activations of ordinary application
logs (tests/observability/test_detectors.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final, final

from stockade.observability.detectors import Anomaly
from stockade.observability.events import EventType, Severity

__all__ = ["MAX_LINES", "MAX_LINE_CHARS", "LogPattern", "LogPatternError", "LogPatterns", "load_log_patterns"]

MAX_LINE_CHARS: Final = 2048
MAX_LINES: Final = 500
MAX_SCAN_CHARS: Final = 64 * 1024
_ID = re.compile(r"\A[a-z0-9][a-z0-9-]{0,47}\Z")


class LogPatternError(ValueError):
    """A pattern file that cannot be used (the message says which entry and why)."""


@final
@dataclass(frozen=True, slots=True)
class LogPattern:
    """One pattern: a regular expression, how bad a match is, and why it is there."""

    id: str
    pattern: str
    severity: Severity
    comment: str
    needles: tuple[str, ...]
    enabled: bool = True
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))


def _parse(entry: Any, index: int) -> LogPattern:
    if not isinstance(entry, Mapping):
        raise LogPatternError(f"pattern #{index}: must be an object")
    ident = entry.get("id")
    if not isinstance(ident, str) or not _ID.match(ident):
        raise LogPatternError(f"pattern #{index}: 'id' must be 1-48 characters a-z, 0-9 and '-'")
    pattern = entry.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise LogPatternError(f"pattern {ident}: 'pattern' must be a non-empty string")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise LogPatternError(f"pattern {ident}: not a valid regular expression: {exc}") from None
    comment = entry.get("comment")
    if not isinstance(comment, str) or not comment.strip():
        raise LogPatternError(f"pattern {ident}: 'comment' must say why the pattern is there")
    try:
        severity = Severity.parse(entry.get("severity", "medium"))
    except ValueError as exc:
        raise LogPatternError(f"pattern {ident}: {exc}") from None
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise LogPatternError(f"pattern {ident}: 'enabled' must be true or false")
    needles = entry.get("needles")
    if (
        not isinstance(needles, list)
        or not needles
        or not all(isinstance(n, str) and n and n == n.lower() for n in needles)
    ):
        raise LogPatternError(f"pattern {ident}: 'needles' must list lower-case substrings every match contains")
    unknown = set(entry) - {"id", "pattern", "needles", "severity", "comment", "enabled"}
    if unknown:
        raise LogPatternError(f"pattern {ident}: unknown fields {', '.join(sorted(unknown))}")
    return LogPattern(ident, pattern, severity, comment.strip(), tuple(needles), enabled)


class LogPatterns:
    """The enabled patterns, each behind its needles."""

    def __init__(self, patterns: Sequence[LogPattern]) -> None:
        ids = [p.id for p in patterns]
        if len(set(ids)) != len(ids):
            raise LogPatternError("pattern ids must be unique")
        self.patterns = tuple(patterns)
        self._enabled = tuple(p for p in patterns if p.enabled)
        needles = sorted({n for p in self._enabled for n in p.needles}, key=len, reverse=True)
        # One pass over the line finds whether any needle is there (most lines hold none).
        self._gate = re.compile("|".join(map(re.escape, needles))) if needles else None

    def match_line(self, line: str) -> LogPattern | None:
        """The first enabled pattern found in ``line`` (its first MAX_LINE_CHARS characters)."""
        lowered = line[:MAX_LINE_CHARS].lower()
        if self._gate is None or self._gate.search(lowered) is None:
            return None
        for pattern in self._enabled:
            for needle in pattern.needles:
                if needle in lowered:
                    if pattern.regex.search(line, 0, MAX_LINE_CHARS) is not None:
                        return pattern
                    break
        return None

    def scan(self, logs: Sequence[str]) -> Anomaly | None:
        """One anomaly naming the patterns and line numbers that matched (never the lines' text)."""
        if not self._enabled:
            return None
        hits: dict[str, list[int]] = {}
        worst = Severity.INFO
        budget = MAX_SCAN_CHARS
        for number, line in enumerate(logs[:MAX_LINES]):
            # Invariant: at most MAX_SCAN_CHARS per activation, so log volume cannot stall detection.
            budget -= min(len(line), MAX_LINE_CHARS)
            if budget < 0:
                break
            pattern = self.match_line(line)
            if pattern is not None:
                lines = hits.setdefault(pattern.id, [])
                if len(lines) < 5:
                    lines.append(number)
                worst = max(worst, pattern.severity)
        if not hits:
            return None
        # Invariant: the event names patterns and line numbers; the text stays in the activation record.
        return Anomaly(
            EventType.ANOMALY_LOG_PATTERN,
            worst,
            f"log lines match suspicious patterns: {', '.join(sorted(hits))}",
            {"patterns": sorted(hits), "lines": {k: list(v) for k, v in hits.items()}},
        )


def load_log_patterns(path: str | Path | None = None) -> LogPatterns:
    """The shipped defaults, or the patterns of ``path`` (which replace them); LogPatternError if invalid."""
    try:
        if path:
            text = Path(path).read_text()
        else:
            text = (resources.files("stockade.observability") / "data" / "suspicious_log_patterns.json").read_text()
        doc = json.loads(text)
    except (OSError, ValueError) as exc:
        raise LogPatternError(f"cannot read log patterns {path or '(defaults)'}: {exc}") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("patterns"), list):
        raise LogPatternError("a log pattern file is an object with a 'patterns' array")
    return LogPatterns([_parse(entry, i) for i, entry in enumerate(doc["patterns"])])
