"""``stockade alerts``: alerts raised (the default), webhooks, rules and dead letters.

Webhook secrets are read from a file or standard input, never from the command line, and are
never printed back (only a fingerprint). Rules are data: ``alerts rule set ID --types ...`` or
``--from-file rule.json`` (docs/design/monitoring.md lists the fields).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stockade.cli.client import CliError
from stockade.cli.context import Context, Subparsers, add_command, add_global_options
from stockade.cli.events import SEVERITIES, add_filters, filter_params
from stockade.cli.names import segment
from stockade.cli.output import format_time, records
from stockade.cli.secrets import read_value

__all__ = ["register"]


def _base(ctx: Context) -> str:
    return f"namespaces/{segment(ctx.namespace)}/alerts"


def _list(ctx: Context, args: argparse.Namespace) -> int:
    """``alerts [list]``."""
    reply = ctx.client.get(_base(ctx), filter_params(ctx, args))
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = [
        [
            format_time(a.get("last")),
            str(a.get("severity", "")),
            str(a.get("rule", "")),
            str(a.get("count", "")),
            str(a.get("title", ""))[:100],
        ]
        for a in records(reply.data)
    ]
    ctx.out.table(["TIME", "SEVERITY", "RULE", "EVENTS", "TITLE"], rows)
    return 0


def _webhook_add(ctx: Context, args: argparse.Namespace) -> int:
    """``alerts webhook add URL``."""
    body = {"url": args.url, "secret": read_value(args.secret_from_file), "minSeverity": args.min_severity}
    reply = ctx.client.post(f"{_base(ctx)}/webhooks", body)
    ident = reply.data.get("id") if isinstance(reply.data, dict) else "?"
    ctx.out.result(f"added webhook {ident} for {args.url}", reply)
    return 0


def _webhook_list(ctx: Context, args: argparse.Namespace) -> int:
    """``alerts webhook list``."""
    reply = ctx.client.get(f"{_base(ctx)}/webhooks")
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = [
        [str(w.get("id")), str(w.get("minSeverity")), str(w.get("url")), str(w.get("secretFingerprint"))]
        for w in records(reply.data)
    ]
    ctx.out.table(["ID", "MIN SEVERITY", "URL", "SECRET FINGERPRINT"], rows)
    return 0


def _webhook_delete(ctx: Context, args: argparse.Namespace) -> int:
    """``alerts webhook delete ID``."""
    reply = ctx.client.delete(f"{_base(ctx)}/webhooks/{segment(args.id)}")
    ctx.out.result(f"deleted webhook {args.id}", reply)
    return 0


def _rule_doc(args: argparse.Namespace) -> dict[str, Any]:
    if args.from_file:
        try:
            loaded = json.loads(Path(args.from_file).read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read rule {args.from_file}: {exc}", exit_code=2) from None
        if not isinstance(loaded, dict):
            raise CliError("a rule file holds one JSON object", exit_code=2)
        return {str(k): v for k, v in loaded.items()}
    if not args.types:
        raise CliError("give --types (e.g. 'sandbox.*,anomaly.*') or --from-file", exit_code=2)
    optional = {
        "min_severity": args.min_severity,
        "severity": args.severity,
        "threshold": args.threshold,
        "window_s": args.window_s,
        "dedup_s": args.dedup_s,
        "comment": args.comment,
    }
    doc: dict[str, Any] = {"types": [t for t in args.types.split(",") if t]}
    doc.update({field: value for field, value in optional.items() if value is not None})
    if args.tag:
        doc["tags"] = list(args.tag)
    return doc


def _rule_set(ctx: Context, args: argparse.Namespace) -> int:
    """``alerts rule set ID``."""
    reply = ctx.client.request("PUT", f"{_base(ctx)}/rules/{segment(args.id)}", body=_rule_doc(args))
    ctx.out.result(f"set alert rule {args.id}", reply)
    return 0


def _rule_list(ctx: Context, args: argparse.Namespace) -> int:
    """``alerts rule list``."""
    reply = ctx.client.get(f"{_base(ctx)}/rules")
    data = reply.data
    if ctx.out.json_mode or not isinstance(data, dict):
        ctx.out.raw(reply)
        return 0
    rows = [
        [
            scope,
            str(rule.get("id")),
            ",".join(str(t) for t in rule.get("types") or []),
            str(rule.get("min_severity")),
            f"{rule.get('threshold')}/{rule.get('window_s')}s",
            f"{rule.get('dedup_s')}s",
            str(rule.get("severity") or "(event's)"),
        ]
        for scope in ("platform", "namespace")
        for rule in records(data.get(scope))
    ]
    ctx.out.table(["SCOPE", "ID", "TYPES", "MIN SEVERITY", "THRESHOLD", "DEDUP", "SEVERITY"], rows)
    return 0


def _rule_delete(ctx: Context, args: argparse.Namespace) -> int:
    """``alerts rule delete ID``."""
    reply = ctx.client.delete(f"{_base(ctx)}/rules/{segment(args.id)}")
    ctx.out.result(f"deleted alert rule {args.id}", reply)
    return 0


def _dead_letters(ctx: Context, args: argparse.Namespace) -> int:
    """``alerts dead-letters``."""
    params: dict[str, str | int] = {"limit": int(args.limit)} if args.limit is not None else {}
    reply = ctx.client.get(f"{_base(ctx)}/deadletters", params)
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = [
        [
            format_time(d.get("at")),
            str(d.get("webhook")),
            str(d.get("alert")),
            str(d.get("attempts")),
            str(d.get("lastError"))[:80],
        ]
        for d in records(reply.data)
    ]
    ctx.out.table(["TIME", "WEBHOOK", "ALERT", "ATTEMPTS", "LAST ERROR"], rows)
    return 0


def _group(verbs: Subparsers[argparse.ArgumentParser], name: str, text: str) -> Subparsers[argparse.ArgumentParser]:
    parser = verbs.add_parser(name, help=text, description=text)
    sub: Subparsers[argparse.ArgumentParser] = parser.add_subparsers(
        dest=f"alerts_{name.replace('-', '_')}_command", metavar="COMMAND", required=True
    )
    return sub


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add ``alerts`` (lists alerts when no verb is given)."""
    text = "list alerts; manage alert webhooks and rules"
    parser = groups.add_parser("alerts", help=text, description=text)
    parser.set_defaults(handler=_list)
    add_filters(parser, types=False)
    verbs: Subparsers[argparse.ArgumentParser] = parser.add_subparsers(
        dest="alerts_command", metavar="COMMAND", required=False
    )
    list_ = add_command(verbs, "list", _list, "list alerts, newest first (the default)")
    add_filters(list_, types=False)
    letters = add_command(verbs, "dead-letters", _dead_letters, "list alerts no webhook accepted after every retry")
    letters.add_argument("--limit", type=int, metavar="N", help="at most N (1-200, default 50)")

    webhook = _group(verbs, "webhook", "manage the webhooks alerts are delivered to (signed with HMAC-SHA256)")
    add = add_command(webhook, "add", _webhook_add, "add a webhook; the signing secret comes from stdin or a file")
    add.add_argument("url", metavar="URL", help="https:// endpoint that receives signed alert POSTs")
    add.add_argument("--secret-from-file", metavar="FILE", help="read the signing secret from FILE instead of stdin")
    add.add_argument("--min-severity", choices=SEVERITIES, default="medium", help="deliver alerts at least this severe")
    add_command(webhook, "list", _webhook_list, "list webhooks (URLs and secret fingerprints)")
    delete = add_command(webhook, "delete", _webhook_delete, "delete a webhook")
    delete.add_argument("id", metavar="ID", help="webhook id")

    rule = _group(verbs, "rule", "manage the namespace's alert rules (the platform's apply too)")
    add_command(rule, "list", _rule_list, "list the platform's and the namespace's alert rules")
    set_ = add_command(rule, "set", _rule_set, "create or replace a rule")
    set_.add_argument("id", metavar="ID", help="rule id: a-z, 0-9 and '-'")
    set_.add_argument("--types", metavar="TYPES", help="comma-separated event types or globs, e.g. 'sandbox.*'")
    set_.add_argument("--min-severity", choices=SEVERITIES, help="only events at least this severe")
    set_.add_argument("--severity", choices=SEVERITIES, help="severity of the alert (default: the event's)")
    set_.add_argument("--threshold", type=int, metavar="N", help="events needed within the window (default 1)")
    set_.add_argument("--window-s", type=int, metavar="S", help="window in seconds (default 60)")
    set_.add_argument("--dedup-s", type=int, metavar="S", help="quiet period per key after an alert (default 300)")
    set_.add_argument("--tag", action="append", metavar="TAG", help="only events of actions with this tag")
    set_.add_argument("--comment", metavar="TEXT", help="why the rule exists")
    set_.add_argument("--from-file", metavar="FILE", help="read the rule document (JSON) from FILE instead")
    delete_rule = add_command(rule, "delete", _rule_delete, "delete a rule")
    delete_rule.add_argument("id", metavar="ID", help="rule id")
    # ``alerts`` has a handler, so the global pass stops there; its verbs get the options here.
    for leaf in (list_, letters, add, delete, set_, delete_rule, *_leaves(webhook, rule)):
        add_global_options(leaf, suppress=True)


def _leaves(*groups: Subparsers[argparse.ArgumentParser]) -> list[argparse.ArgumentParser]:
    """Verbs without their own arguments (``webhook list``, ``rule list``)."""
    return [p for group in groups for name, p in group.choices.items() if name == "list"]
