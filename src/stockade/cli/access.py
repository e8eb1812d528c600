"""``stockade role|key|audit|policy``: roles, keys, the audit log and the namespace policy."""

from __future__ import annotations

import argparse
import json

from stockade.cli.client import CliError
from stockade.cli.context import Context, Subparsers, add_command, add_group
from stockade.cli.names import segment
from stockade.cli.output import format_time, records

__all__ = ["register"]

ROLES = ("owner", "developer", "deployer", "invoker", "viewer", "auditor")


def _ns(ctx: Context, args: argparse.Namespace) -> str:
    return f"namespaces/{segment(getattr(args, 'namespace', None) or ctx.namespace)}"


def _role_list(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.get(f"{_ns(ctx, args)}/roles")
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = [
        [str(b.get("subject")), str(b.get("role")), str(b.get("grantedBy")), format_time(b.get("created"))]
        for b in records(reply.data)
    ]
    ctx.out.table(["SUBJECT", "ROLE", "GRANTED BY", "SINCE"], rows)
    return 0


def _role_grant(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.put(f"{_ns(ctx, args)}/roles/{segment(args.subject)}", {"role": args.role})
    ctx.out.result(f"{args.subject} is now {args.role}", reply)
    return 0


def _role_revoke(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.delete(f"{_ns(ctx, args)}/roles/{segment(args.subject)}")
    ctx.out.result(f"revoked the role of {args.subject}", reply)
    return 0


def _key_list(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.get(f"{_ns(ctx, args)}/keys")
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = [
        [
            str(k.get("uuid")),
            str(k.get("subject")),
            format_time(k.get("created")),
            format_time(k.get("revoked")) if k.get("revoked") else "",
        ]
        for k in records(reply.data)
    ]
    ctx.out.table(["UUID", "SUBJECT", "CREATED", "REVOKED"], rows)
    return 0


def _key_create(ctx: Context, args: argparse.Namespace) -> int:
    body: dict[str, str] = {"subject": args.subject}
    if args.role:
        body["role"] = args.role
    reply = ctx.client.post(f"{_ns(ctx, args)}/keys", body)
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    data = reply.data if isinstance(reply.data, dict) else {}
    ctx.out.ok(f"created a key for {args.subject} (shown once; store it safely)")
    ctx.out.line(f"AUTH={data.get('key')}")
    return 0


def _key_revoke(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.delete(f"{_ns(ctx, args)}/keys/{segment(args.uuid)}")
    ctx.out.result(f"revoked key {args.uuid}", reply)
    return 0


def _audit_list(ctx: Context, args: argparse.Namespace) -> int:
    params: dict[str, str | int] = {"limit": args.limit}
    if args.since:
        params["since"] = args.since
    reply = ctx.client.get(f"{_ns(ctx, args)}/audit", params)
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = [
        [
            str(e.get("seq")),
            format_time(e.get("at")),
            str(e.get("actor")),
            str(e.get("action")),
            str(e.get("outcome")),
            str(e.get("resource")),
        ]
        for e in records(reply.data)
    ]
    ctx.out.table(["SEQ", "AT", "ACTOR", "ACTION", "OUTCOME", "RESOURCE"], rows)
    return 0


def _audit_verify(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.get(f"{_ns(ctx, args)}/audit/verify")
    data = reply.data if isinstance(reply.data, dict) else {}
    if ctx.out.json_mode:
        ctx.out.raw(reply)
    elif data.get("ok"):
        head = data.get("head") or {}
        ctx.out.ok(f"audit chain intact: {data.get('entries')} entries; head {head.get('seq')}:{head.get('mac')}")
    else:
        for problem in data.get("problems") or []:
            ctx.out.line(f"problem: {problem}")
    if not data.get("ok"):
        raise CliError("the audit chain failed verification", exit_code=1)
    return 0


def _audit_export(ctx: Context, args: argparse.Namespace) -> int:
    """JSON lines of every entry, paging through the chain."""
    since = 0
    while True:
        reply = ctx.client.get(f"{_ns(ctx, args)}/audit", {"since": since, "limit": 1000})
        batch = records(reply.data)
        for entry in batch:
            ctx.out.line(json.dumps(entry, sort_keys=True, separators=(",", ":")))
        if len(batch) < 1000:
            return 0
        since = int(str(batch[-1].get("seq")))


def _policy_get(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.get(f"{_ns(ctx, args)}/policy")
    ctx.out.raw(reply)
    return 0


def _policy_protect(ctx: Context, args: argparse.Namespace) -> int:
    protected = args.state == "on"
    reply = ctx.client.put(f"{_ns(ctx, args)}/policy", {"protected": protected})
    ctx.out.result(f"namespace protection {'on: only deployers change entities' if protected else 'off'}", reply)
    return 0


def _policy_lint(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.get(f"{_ns(ctx, args)}/policy/lint")
    data = reply.data if isinstance(reply.data, dict) else {}
    if ctx.out.json_mode:
        ctx.out.raw(reply)
    else:
        for item in records(data.get("actions")):
            for finding in item.get("findings") or []:
                ctx.out.line(f"{item.get('action')}: {finding}")
        if not data.get("actions"):
            ctx.out.ok("no broad or useless grants")
    return 1 if data.get("actions") else 0


def _ns_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", metavar="NS", help="namespace (default: yours)")


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add the role, key, audit and policy command groups."""
    role = add_group(groups, "role", "roles of people and automation in a namespace")
    _ns_option(add_command(role, "list", _role_list, "list role bindings"))
    grant = add_command(role, "grant", _role_grant, "give SUBJECT a role")
    grant.add_argument("subject", metavar="SUBJECT")
    grant.add_argument("role", metavar="ROLE", choices=ROLES, help=", ".join(ROLES))
    _ns_option(grant)
    revoke = add_command(role, "revoke", _role_revoke, "remove SUBJECT's role")
    revoke.add_argument("subject", metavar="SUBJECT")
    _ns_option(revoke)

    key = add_group(groups, "key", "API keys of a namespace (needs the roles permission)")
    _ns_option(add_command(key, "list", _key_list, "list keys (never their secrets)"))
    create = add_command(key, "create", _key_create, "issue a key for SUBJECT (the secret is shown once)")
    create.add_argument("subject", metavar="SUBJECT")
    create.add_argument("--role", choices=ROLES, help="grant this role too")
    _ns_option(create)
    revoke_key = add_command(key, "revoke", _key_revoke, "revoke a key at once")
    revoke_key.add_argument("uuid", metavar="UUID")
    _ns_option(revoke_key)

    audit = add_group(groups, "audit", "the namespace's tamper-evident audit log (read-only)")
    listing = add_command(audit, "list", _audit_list, "show entries")
    listing.add_argument("--since", type=int, metavar="SEQ", help="entries after sequence number SEQ")
    listing.add_argument("--limit", type=int, default=200, metavar="N", help="at most N entries (default 200)")
    _ns_option(listing)
    _ns_option(add_command(audit, "verify", _audit_verify, "check the chain: altered, removed or reordered entries"))
    _ns_option(add_command(audit, "export", _audit_export, "write every entry as JSON lines"))

    policy = add_group(groups, "policy", "namespace policy and per-action grants")
    _ns_option(add_command(policy, "get", _policy_get, "show the namespace policy"))
    protect = add_command(policy, "protect", _policy_protect, "only deployers may change entities (on) or not (off)")
    protect.add_argument("state", choices=("on", "off"))
    _ns_option(protect)
    _ns_option(add_command(policy, "lint", _policy_lint, "flag broad grants (wildcards) and useless ones"))
