"""``python -m stockade.security.scanner PATH``: the deploy gate, run locally (``stockade scan PATH``).

Reads a directory, a .zip or a source file; never runs it. Exit status: 0 when no finding is
at or above ``--fail-on`` (default high), 1 when one is, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from stockade.security.scanner.advisories import Advisory, AdvisoryError, iter_osv_documents, parse_osv
from stockade.security.scanner.dependencies import advisory_coverage_findings
from stockade.security.scanner.findings import Severity
from stockade.security.scanner.rules import RulesError
from stockade.security.scanner.sarif import to_sarif
from stockade.security.scanner.scan import Scanner

__all__ = ["EXIT_BLOCKED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK, EXIT_BLOCKED, EXIT_USAGE = 0, 1, 2
# Findings that mean a check did not run, or not on everything.
_NOT_RUN = frozenset({"analysis.unavailable", "bundle.scan-budget", "bundle.file-too-large", "bundle.unreadable"})


def build_parser() -> argparse.ArgumentParser:
    """The arguments of ``stockade scan PATH``."""
    parser = argparse.ArgumentParser(
        prog="stockade scan",
        description="Run the deploy-time security gate locally on an action (for CI): dependencies, "
        "code, secrets and policy. The code is read, never run.",
    )
    parser.add_argument("path", metavar="PATH", type=Path, help="action directory, .zip archive or source file")
    parser.add_argument(
        "--advisories",
        metavar="PATH",
        type=Path,
        action="append",
        default=[],
        help="OSV advisories (directory, .zip or .tar.gz of JSON/YAML files); repeatable",
    )
    parser.add_argument(
        "--fail-on",
        metavar="SEVERITY",
        default="high",
        choices=[s.value for s in Severity],
        help="exit 1 when a finding is at least this severe (default: high)",
    )
    parser.add_argument("--sarif", metavar="FILE", help="also write SARIF 2.1.0 to FILE ('-' for stdout)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    parser.add_argument(
        "-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"), help="a default parameter"
    )
    parser.add_argument(
        "-a", "--annotation", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"), help="an annotation"
    )
    return parser


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _load_advisories(paths: list[Path], err: TextIO) -> list[Advisory]:
    advisories: list[Advisory] = []
    for path in paths:
        rejected = 0
        for _name, doc in iter_osv_documents(path):
            if isinstance(doc, AdvisoryError):
                rejected += 1
                continue
            try:
                advisories.append(parse_osv(doc))
            except AdvisoryError:
                rejected += 1
        if rejected:
            err.write(f"warning: {rejected} files under {path} are not usable OSV advisories\n")
    return advisories


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run one local scan; returns the exit status."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not args.path.exists():
        err.write(f"error: {args.path} does not exist\n")
        return EXIT_USAGE
    try:
        scanner = Scanner()
    except RulesError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    advisories = _load_advisories(args.advisories, err)
    parameters = {k: _json_value(v) for k, v in args.param}
    annotations = {k: _json_value(v) for k, v in args.annotation}
    prepared = scanner.prepare_path(args.path, parameters=parameters, annotations=annotations)
    coverage: dict[str, tuple[int, int | None]] = {}
    for advisory in advisories:
        for ecosystem in {eco for eco, _name in advisory.packages}:
            count, _ = coverage.get(ecosystem, (0, None))
            coverage[ecosystem] = (count + 1, None)
    not_run = advisory_coverage_findings(prepared.dependencies, coverage, scanner.rules)
    prepared.findings.extend(not_run)
    report = scanner.complete(prepared, advisories)
    blocking = Severity.at_least(Severity(args.fail_on))
    if args.sarif:
        text = json.dumps(to_sarif(report, scanner.rules, blocking=blocking), indent=2)
        if args.sarif == "-":
            out.write(text + "\n")
        else:
            Path(args.sarif).write_text(text + "\n", encoding="utf-8")
    blocked = report.matching(blocking)
    if args.json:
        out.write(json.dumps({**report.to_json(), "blocked": bool(blocked)}, indent=2) + "\n")
    elif args.sarif != "-":
        for finding in report.findings:
            out.write(f"{finding.describe()}\n")
        counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
        summary = f"{len(report.findings)} findings ({counts or 'none'}) in {report.files_scanned} files analysed"
        # Never "passed" for a check that could not run (or ran on part of the code).
        skipped = [f for f in report.findings if f.rule_id in _NOT_RUN and f not in not_run]
        if blocked:
            verdict = f"BLOCKED: {len(blocked)} at or above {args.fail_on}"
        elif not_run or skipped:
            parts = []
            if not_run:
                ecosystems = ", ".join(sorted(f.ecosystem or "" for f in not_run))
                parts.append(
                    f"the dependency check did NOT run for {ecosystems} (no advisories loaded; pass --advisories PATH)"
                )
            if skipped:
                parts.append(
                    f"{len(skipped)} check(s) did not run on all of the code ({', '.join(sorted({f.rule_id for f in skipped}))})"
                )
            verdict = f"INCOMPLETE: {'; '.join(parts)}; nothing else at or above {args.fail_on}"
        else:
            verdict = "passed"
        out.write(f"{summary}; {len(advisories)} advisories loaded; {verdict}\n")
    return EXIT_BLOCKED if blocked else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
