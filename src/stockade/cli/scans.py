"""``stockade scan``: the deploy gate's reports (``scan report ACTION``) and local scans.

``stockade scan PATH`` runs the gate on this machine, for CI: like ``up``, the CLI replaces
itself with ``python -m stockade.security.scanner`` (it never imports the scanner) and every
argument after ``scan`` goes to it. Exit status 1 means blocking findings.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from stockade.cli.client import Json
from stockade.cli.context import Context, Subparsers, add_command
from stockade.cli.names import segment

__all__ = ["SCANNER_MODULE", "local_scan_arguments", "register"]

SCANNER_MODULE = "stockade.security.scanner"
_VALUE_OPTIONS = frozenset({"--apihost", "--auth"})
_DESCRIPTION = """\
work with the deploy-time security gate

  stockade scan report ACTION [--version V] [--sarif]   the stored report of a deployed action
  stockade scan PATH [--sarif FILE] [--fail-on SEVERITY] [--advisories OSV_PATH]
      scan a local directory, .zip or source file without deploying (for CI); exits 1 on
      findings at or above --fail-on (default high); see `stockade scan PATH --help`
"""


def local_scan_arguments(argv: Sequence[str]) -> list[str] | None:
    """The arguments after ``scan`` when the command is a local ``scan PATH``, else None."""
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in _VALUE_OPTIONS:
            index += 2
            continue
        if arg.startswith("-"):
            if arg in ("-h", "--help", "--version"):
                return None
            index += 1
            continue
        if arg != "scan":
            return None
        rest = list(argv[index + 1 :])
        return rest if rest and rest[0] not in ("report", "-h", "--help") else None
    return None


def _report(ctx: Context, args: argparse.Namespace) -> int:
    """``scan report ACTION``."""
    name = ctx.action_name(args.name)
    path = f"namespaces/{segment(name.namespace)}/scans/"
    path += f"{segment(name.package)}/{segment(name.name)}" if name.package else segment(name.name)
    params: dict[str, str | int] = {"format": "sarif" if args.sarif else "json"}
    if args.version:
        params["version"] = args.version
    reply = ctx.client.get(path, params)
    data = reply.data
    if ctx.out.json_mode or args.sarif or not isinstance(data, dict):
        ctx.out.raw(reply)
        return 0
    raw_report = data.get("report")
    report: dict[str, Json] = raw_report if isinstance(raw_report, dict) else {}
    counts = report.get("counts") or {}
    ctx.out.fields(
        f"scan of /{data.get('namespace')}/{data.get('action')} version {data.get('version')}",
        [
            ("decision", str(data.get("decision", ""))),
            ("findings", ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"),
            ("blocks", ", ".join((data.get("policy") or {}).get("block") or []) or "nothing"),
        ],
    )
    accepted = data.get("acceptedRisk")
    if isinstance(accepted, dict):
        ctx.out.line(f"  risk accepted by {accepted.get('subject')}: {accepted.get('reason')}")
    for finding in report.get("findings") or []:
        where = finding.get("file") or "-"
        if finding.get("line"):
            where = f"{where}:{finding['line']}"
        ctx.out.line(f"  [{finding.get('severity')}] {finding.get('rule')} {where}: {finding.get('message')}")
    return 0


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add the ``scan`` command group (``scan PATH`` is forwarded before argparse runs)."""
    parser = groups.add_parser(
        "scan", help="deploy-gate reports, or scan a local PATH (exits 1 on blocking findings)",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    verbs: Subparsers[argparse.ArgumentParser] = parser.add_subparsers(
        dest="scan_command", metavar="COMMAND", required=True
    )
    report = add_command(verbs, "report", _report, "show the deploy-gate report of an action version")
    report.add_argument("name", metavar="ACTION", help="action name: NAME, PKG/NAME, /NS/NAME or /NS/PKG/NAME")
    report.add_argument("--version", metavar="V", help="action version (default: the current one)")
    report.add_argument("--sarif", action="store_true", help="print SARIF 2.1.0 instead of a summary")
