"""``stockade activation``: list, get, logs, result and poll activation records."""

from __future__ import annotations

import argparse
import re

from stockade.cli.client import CliError, Json
from stockade.cli.context import Context, Subparsers, add_command, add_group, add_list_options, list_params
from stockade.cli.names import collection_path, segment
from stockade.cli.output import ACTIVATION_STATUS_NAMES, annotation, format_time, records

__all__ = ["POLL_INTERVAL_S", "register", "strip_log_line"]

POLL_INTERVAL_S = 2.0
# The server caps list limits at 200; poll asks for the most it can get per round.
POLL_PAGE = 200
# Stored lines are "<ISO timestamp padded to 30> stdout: <text>" (openwhisk-compat.md §11).
_LOG_PREFIX = re.compile(r"^\S+\s+(?:stdout|stderr):\s?")


def strip_log_line(line: str) -> str:
    """Drop the timestamp and stream prefix of one log line (``--strip``)."""
    return _LOG_PREFIX.sub("", line, count=1)


def _activations_path(ctx: Context) -> str:
    """``namespaces/{ns}/activations``; the server lists the caller's namespace only."""
    return collection_path(ctx.namespace, "activations")


def _name_filter(ctx: Context, text: str) -> str:
    """The ``name`` query value: ``action`` or ``pkg/action`` (a namespace prefix is dropped)."""
    return ctx.action_name(text).key


def _resolve_id(ctx: Context, args: argparse.Namespace) -> str:
    """The activation id given, or the newest one with ``--last``."""
    if args.last and args.activation_id:
        raise CliError("give either ACTIVATION_ID or --last, not both", exit_code=2)
    if args.activation_id:
        return str(args.activation_id)
    if not args.last:
        raise CliError("give an ACTIVATION_ID or --last", exit_code=2)
    reply = ctx.client.get(_activations_path(ctx), {"limit": 1})
    if not isinstance(reply.data, list) or not reply.data:
        raise CliError("there are no activations yet", exit_code=4)
    return str(reply.data[0]["activationId"])


def _activation_path(ctx: Context, activation_id: str, suffix: str = "") -> str:
    """``.../activations/{id}[/logs|/result]``."""
    return f"{_activations_path(ctx)}/{segment(activation_id)}{suffix}"


def _duration(record: Json) -> str:
    """``123ms`` or empty (trigger activations have no duration)."""
    duration = record.get("duration")
    return f"{duration}ms" if isinstance(duration, int) else ""


def _row(record: Json) -> list[str]:
    """One line of ``activation list``: time, id, kind, cold/warm, duration, status, entity."""
    status_code = record.get("statusCode")
    status = ACTIVATION_STATUS_NAMES.get(status_code, "") if isinstance(status_code, int) else ""
    if not status and isinstance(record.get("response"), dict):
        status = str(record["response"].get("status", ""))
    kind = annotation(record, "kind") or ""
    start = "cold" if annotation(record, "initTime") is not None else ("warm" if kind else "")
    entity = f"{record.get('namespace')}/{record.get('name')}:{record.get('version', '')}"
    return [
        format_time(record.get("start")),
        str(record.get("activationId", "")),
        str(kind),
        start,
        _duration(record),
        status,
        entity,
    ]


def _list(ctx: Context, args: argparse.Namespace) -> int:
    """``activation list [NAME]``."""
    params = list_params(args)
    if args.name:
        params["name"] = _name_filter(ctx, args.name)
    if args.since is not None:
        params["since"] = int(args.since)
    if args.upto is not None:
        params["upto"] = int(args.upto)
    if args.tag:
        params["tag"] = args.tag
    reply = ctx.client.get(_activations_path(ctx), params)
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    headers = ["DATETIME", "ACTIVATION ID", "KIND", "START", "DURATION", "STATUS", "ENTITY"]
    ctx.out.table(headers, [_row(record) for record in records(reply.data)])
    return 0


def _get(ctx: Context, args: argparse.Namespace) -> int:
    """``activation get ID|--last``."""
    activation_id = _resolve_id(ctx, args)
    reply = ctx.client.get(_activation_path(ctx, activation_id))
    ctx.out.ok(f"got activation {activation_id}")
    ctx.out.raw(reply)
    return 0


def _logs(ctx: Context, args: argparse.Namespace) -> int:
    """``activation logs ID|--last [--strip]``."""
    activation_id = _resolve_id(ctx, args)
    reply = ctx.client.get(_activation_path(ctx, activation_id, "/logs"))
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    lines = reply.data.get("logs", []) if isinstance(reply.data, dict) else []
    for line in lines:
        ctx.out.line(strip_log_line(str(line)) if args.strip else str(line))
    return 0


def _result(ctx: Context, args: argparse.Namespace) -> int:
    """``activation result ID|--last``: the result JSON (the whole response with ``--json``)."""
    activation_id = _resolve_id(ctx, args)
    reply = ctx.client.get(_activation_path(ctx, activation_id, "/result"))
    if ctx.out.json_mode or not isinstance(reply.data, dict) or "result" not in reply.data:
        ctx.out.raw(reply)
    else:
        ctx.out.json(reply.data["result"])
    return 0


def _poll_once(ctx: Context, params: dict[str, str | int], seen: set[str]) -> None:
    """Fetch recent records and print those not seen yet, oldest first."""
    reply = ctx.client.get(_activations_path(ctx), params)
    for record in reversed(records(reply.data)):
        activation_id = str(record.get("activationId", ""))
        if not activation_id or activation_id in seen:
            continue
        seen.add(activation_id)
        if ctx.out.json_mode:
            ctx.out.json(record)
            continue
        ctx.out.line(f"Activation: '{record.get('name')}' ({activation_id})")
        for line in record.get("logs") or []:
            ctx.out.line(f"  {line}")


def _poll(ctx: Context, args: argparse.Namespace) -> int:
    """``activation poll [NAME] [--exit SECONDS]``: print new activations' logs as they arrive."""
    # docs=true returns full records, logs included, so one request per round suffices.
    params: dict[str, str | int] = {"docs": "true", "limit": POLL_PAGE}
    params["since"] = ctx.clock.now_ms() - int(args.since_seconds * 1000)
    if args.name:
        params["name"] = _name_filter(ctx, args.name)
    deadline = ctx.clock.monotonic() + args.exit if args.exit is not None else None
    seen: set[str] = set()
    if not ctx.out.json_mode:
        ctx.out.error("Polling for activation logs; press Ctrl-C to stop.")
    try:
        while True:
            _poll_once(ctx, params, seen)
            if deadline is None:
                ctx.clock.sleep(POLL_INTERVAL_S)
                continue
            remaining_s = deadline - ctx.clock.monotonic()
            if remaining_s <= 0:
                return 0
            # The last round runs at the deadline rather than one interval past it.
            ctx.clock.sleep(min(POLL_INTERVAL_S, remaining_s))
    except KeyboardInterrupt:
        return 0


def _id_options(parser: argparse.ArgumentParser) -> None:
    """``ACTIVATION_ID`` or ``--last``."""
    parser.add_argument("activation_id", metavar="ACTIVATION_ID", nargs="?", help="the activation id")
    parser.add_argument("-l", "--last", action="store_true", help="use the most recent activation")


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add the ``activation`` command group."""
    verbs = add_group(groups, "activation", "work with activations")

    list_ = add_command(verbs, "list", _list, "list activations, newest first")
    list_.add_argument("name", metavar="NAME", nargs="?", help="only activations of this action")
    add_list_options(list_)
    list_.add_argument("--since", type=int, metavar="EPOCH_MS", help="started at or after this time")
    list_.add_argument("--upto", type=int, metavar="EPOCH_MS", help="started at or before this time")
    list_.add_argument("--tag", metavar="TAG", help="only activations of actions with this tag")

    _id_options(add_command(verbs, "get", _get, "show an activation record"))
    logs = add_command(verbs, "logs", _logs, "show an activation's logs")
    _id_options(logs)
    logs.add_argument("-s", "--strip", action="store_true", help="drop timestamps and stream names")
    _id_options(add_command(verbs, "result", _result, "show an activation's result"))

    poll = add_command(verbs, "poll", _poll, "print the logs of new activations as they arrive")
    poll.add_argument("name", metavar="NAME", nargs="?", help="only activations of this action")
    poll.add_argument("--exit", type=float, metavar="SECONDS", help="stop after SECONDS (default: until Ctrl-C)")
    poll.add_argument(
        "--since-seconds",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also show activations started up to SECONDS ago",
    )
