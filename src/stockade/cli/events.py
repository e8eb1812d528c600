"""``stockade events``: the security events of a namespace (``stockade events list`` is the same).

Filters: ``--type`` (repeatable; ``area.*`` matches an area), ``--since`` (epoch ms, or a
duration back from now such as ``30m``, ``2h``, ``7d``), ``--severity`` (at least), ``--limit``.
"""

from __future__ import annotations

import argparse
import json
import re

from stockade.cli.client import CliError
from stockade.cli.context import Context, Subparsers, add_command, add_global_options
from stockade.cli.names import segment
from stockade.cli.output import format_time, records

__all__ = ["parse_since", "register"]

_DURATION = re.compile(r"\A(\d+)([smhd])\Z")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
SEVERITIES = ("info", "low", "medium", "high", "critical")


def parse_since(raw: str, now_ms: int) -> int:
    """Epoch milliseconds from ``1700000000000`` or a duration back from now (``30m``, ``2h``)."""
    if raw.isdigit():
        return int(raw)
    found = _DURATION.match(raw.strip())
    if found is None:
        raise CliError(f"--since: use epoch milliseconds or a duration like 30m, 2h, 7d (got {raw!r})", exit_code=2)
    return now_ms - int(found.group(1)) * _UNIT_MS[found.group(2)]


def add_filters(parser: argparse.ArgumentParser, *, types: bool = True) -> None:
    """The list filters shared by ``events`` and ``alerts``."""
    if types:
        parser.add_argument(
            "--type", action="append", metavar="TYPE", help="only this event type, or AREA.* (repeatable)"
        )
    parser.add_argument("--since", metavar="WHEN", help="at or after: epoch ms, or a duration back from now (30m, 2h)")
    parser.add_argument("--severity", choices=SEVERITIES, help="at least this severity")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N (1-200, default 50)")


def filter_params(ctx: Context, args: argparse.Namespace) -> dict[str, str | int]:
    """Query parameters of the filters given."""
    params: dict[str, str | int] = {}
    if getattr(args, "type", None):
        params["type"] = ",".join(args.type)
    if getattr(args, "since", None):
        params["since"] = parse_since(args.since, ctx.clock.now_ms())
    if getattr(args, "severity", None):
        params["severity"] = args.severity
    if getattr(args, "limit", None) is not None:
        params["limit"] = int(args.limit)
    return params


def _list(ctx: Context, args: argparse.Namespace) -> int:
    """``events [list]``."""
    reply = ctx.client.get(f"namespaces/{segment(ctx.namespace)}/events", filter_params(ctx, args))
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = []
    for event in records(reply.data):
        details = event.get("details")
        summary = ""
        if isinstance(details, dict):
            summary = str(details.get("message") or details.get("reason") or details.get("finding") or "")
            if not summary:
                summary = json.dumps(details, separators=(",", ":"))[:80]
        rows.append(
            [
                format_time(event.get("time")),
                str(event.get("type", "")),
                str(event.get("severity", "")),
                str(event.get("namespace") or "(platform)"),
                str(event.get("action") or "-"),
                str(event.get("subject") or "-"),
                summary[:80],
            ]
        )
    ctx.out.table(["TIME", "TYPE", "SEVERITY", "NAMESPACE", "ACTION", "SUBJECT", "DETAILS"], rows)
    return 0


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add ``events`` (lists when no verb is given)."""
    text = "list security events (auth failures, denials, tamper, gate, anomalies)"
    parser = groups.add_parser("events", help=text, description=text)
    parser.set_defaults(handler=_list)
    add_filters(parser)
    verbs: Subparsers[argparse.ArgumentParser] = parser.add_subparsers(
        dest="events_command", metavar="COMMAND", required=False
    )
    list_ = add_command(verbs, "list", _list, "list security events, newest first (the default)")
    add_filters(list_)
    # ``events`` has a handler, so the global pass stops there; its verb gets the options here.
    add_global_options(list_, suppress=True)
