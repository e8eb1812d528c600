"""Python static analysis with bandit, used as a library: parse in memory, never import or run.

Bandit's test set is built once per process. Each file is parsed by bandit's node visitor from
bytes in memory; ``# nosec`` comments are ignored (the scanned code must not be able to silence
the gate). Results map to Stockade rules through ``rules/bandit.json``.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
import warnings
from typing import Any

from stockade.security.scanner.bundle import SourceFile
from stockade.security.scanner.findings import Finding, Severity
from stockade.security.scanner.rules import RuleBook

__all__ = ["analyse_python"]

# bandit's module-level logger reports our in-memory names as unresolvable paths; keep it quiet.
logging.getLogger("bandit").setLevel(logging.ERROR)

# Invariant: bandit's extension manager and test set are shared, so one file at a time.
_LOCK = threading.Lock()
_FNAME_PREFIX = "stockade-scan/"


@functools.cache
def _test_set() -> Any:
    # Imported on first use (loading bandit's plugins takes ~100 ms). stevedore, which bandit
    # loads plugins with, warns about a deprecated argument bandit passes; that is not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from bandit.core import config, meta_ast, metrics, node_visitor, test_set  # noqa: F401 - load all now

        return test_set.BanditTestSet(config.BanditConfig(), profile={})


def _run_bandit(path: str, data: bytes) -> list[Any]:
    tests = _test_set()
    from bandit.core import meta_ast, metrics, node_visitor

    visitor = node_visitor.BanditNodeVisitor(
        _FNAME_PREFIX + path,
        io.BytesIO(data),
        meta_ast.BanditMetaAst(),
        tests,
        False,
        {},  # no nosec lines: suppression comments in scanned code are not honoured
        metrics.Metrics(),
    )
    visitor.process(data)
    results: list[Any] = visitor.tester.results
    return results


def _to_finding(rules: RuleBook, path: str, issue: Any) -> Finding | None:
    test_id = str(getattr(issue, "test_id", ""))
    bandit_severity = str(getattr(issue, "severity", "UNDEFINED")).upper()
    mapping = rules.bandit
    severity: Severity | None = None
    if test_id in mapping.tests:
        rule_id, low_rule = mapping.tests[test_id]
        if rule_id is None:
            return None  # ignored with a reason in bandit.json
        if low_rule is not None and bandit_severity == "LOW":
            rule_id = low_rule
    else:
        rule_id = mapping.fallback_rule
        severity = mapping.severity_map.get(bandit_severity, Severity.INFO)
    line = getattr(issue, "lineno", None)
    text = " ".join(str(getattr(issue, "text", "")).split())
    return rules.finding(
        rule_id,
        f"{text} (bandit {test_id} {getattr(issue, 'test', '')})".strip(),
        severity=severity,
        file=path,
        line=int(line) if isinstance(line, int) and line > 0 else None,
        source=f"bandit:{test_id}",
    )


def analyse_python(files: list[SourceFile], rules: RuleBook) -> tuple[list[Finding], int]:
    """Findings for the Python files among ``files``, and how many were analysed."""
    findings: list[Finding] = []
    analysed = 0
    for source in files:
        if not source.path.endswith(".py"):
            continue
        analysed += 1
        try:
            with _LOCK:
                issues = _run_bandit(source.path, source.data)
        except (SyntaxError, ValueError) as exc:
            findings.append(
                rules.finding(
                    "code.unparsable",
                    f"{source.path} does not parse as Python ({exc.__class__.__name__})",
                    file=source.path,
                )
            )
            continue
        except (RecursionError, MemoryError):
            findings.append(
                rules.finding("code.unparsable", f"{source.path} is nested too deeply to analyse", file=source.path)
            )
            continue
        except Exception as exc:  # a bandit plugin failing must not crash the gate
            findings.append(
                rules.finding(
                    "analysis.unavailable",
                    f"bandit failed on {source.path} ({exc.__class__.__name__})",
                    file=source.path,
                )
            )
            continue
        for issue in issues:
            finding = _to_finding(rules, source.path, issue)
            if finding is not None:
                findings.append(finding)
    return findings, analysed
