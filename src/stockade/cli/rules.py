"""``stockade rule``: create, update, enable, disable, get, list and delete rules."""

from __future__ import annotations

import argparse

from stockade.cli.client import Json
from stockade.cli.context import Context, Subparsers, add_command, add_group, add_list_options, list_params
from stockade.cli.names import collection_path
from stockade.cli.output import format_time, records
from stockade.cli.params import add_annotation_options, build_kvs

__all__ = ["register", "rule_body"]


def rule_body(ctx: Context, args: argparse.Namespace) -> dict[str, Json]:
    """The PUT body: trigger and action as ``/ns[/pkg]/name`` strings (``_`` resolved by the server)."""
    body: dict[str, Json] = {
        "trigger": ctx.entity_name(args.trigger, "trigger").fqn,
        "action": ctx.action_name(args.action).fqn,
    }
    annotations = build_kvs(args.annotations, args.annotation_file)
    if annotations is not None:
        body["annotations"] = annotations
    return body


def _put(ctx: Context, args: argparse.Namespace, *, overwrite: bool) -> int:
    """PUT the rule; ``overwrite`` makes it an update."""
    name = ctx.entity_name(args.name, "rule")
    reply = ctx.client.put(name.path("rules"), rule_body(ctx, args), overwrite=overwrite)
    ctx.out.result(f"{'updated' if overwrite else 'created'} rule {args.name}", reply)
    return 0


def _create(ctx: Context, args: argparse.Namespace) -> int:
    """``rule create``."""
    return _put(ctx, args, overwrite=False)


def _update(ctx: Context, args: argparse.Namespace) -> int:
    """``rule update``."""
    return _put(ctx, args, overwrite=True)


def _set_status(ctx: Context, args: argparse.Namespace, status: str) -> int:
    """POST ``{"status": ...}``; the server answers a plain-text ``OK``."""
    name = ctx.entity_name(args.name, "rule")
    reply = ctx.client.post(name.path("rules"), {"status": status})
    ctx.out.result(f"{'enabled' if status == 'active' else 'disabled'} rule {args.name}", reply)
    return 0


def _enable(ctx: Context, args: argparse.Namespace) -> int:
    """``rule enable``."""
    return _set_status(ctx, args, "active")


def _disable(ctx: Context, args: argparse.Namespace) -> int:
    """``rule disable``."""
    return _set_status(ctx, args, "inactive")


def _ref(ref: Json) -> str:
    """``/path/name`` from a rule's ``{"path", "name"}`` reference."""
    if isinstance(ref, dict):
        return f"/{ref.get('path')}/{ref.get('name')}"
    return str(ref or "")


def _get(ctx: Context, args: argparse.Namespace) -> int:
    """``rule get``: a summary, or the raw entity with ``--json``."""
    name = ctx.entity_name(args.name, "rule")
    reply = ctx.client.get(name.path("rules"))
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rule = reply.data
    if not isinstance(rule, dict):
        ctx.out.raw(reply)
        return 0
    fields = [
        ("status", str(rule.get("status", ""))),
        ("trigger", _ref(rule.get("trigger"))),
        ("action", _ref(rule.get("action"))),
        ("version", str(rule.get("version", ""))),
        ("updated", format_time(rule.get("updated"))),
    ]
    ctx.out.fields(f"rule /{rule.get('namespace')}/{rule.get('name')}", fields)
    return 0


def _list(ctx: Context, args: argparse.Namespace) -> int:
    """``rule list`` (the server's list has no status; ``rule get`` shows it)."""
    reply = ctx.client.get(collection_path(ctx.namespace, "rules"), list_params(args))
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = [
        [
            f"/{entity.get('namespace')}/{entity.get('name')}",
            _ref(entity.get("trigger")),
            _ref(entity.get("action")),
            format_time(entity.get("updated")),
        ]
        for entity in records(reply.data)
    ]
    ctx.out.table(["NAME", "TRIGGER", "ACTION", "UPDATED"], rows)
    return 0


def _delete(ctx: Context, args: argparse.Namespace) -> int:
    """``rule delete``."""
    name = ctx.entity_name(args.name, "rule")
    reply = ctx.client.delete(name.path("rules"))
    ctx.out.result(f"deleted rule {args.name}", reply)
    return 0


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add the ``rule`` command group."""
    verbs = add_group(groups, "rule", "work with rules")
    for verb, handler, help_text in (
        ("create", _create, "create a rule linking a trigger to an action (enabled)"),
        ("update", _update, "update a rule (or create it)"),
    ):
        parser = add_command(verbs, verb, handler, help_text)
        parser.add_argument("name", metavar="NAME", help="rule name: NAME or /NS/NAME")
        parser.add_argument("trigger", metavar="TRIGGER", help="trigger name")
        parser.add_argument("action", metavar="ACTION", help="action name (may be PKG/NAME)")
        add_annotation_options(parser)

    for verb, handler, help_text in (
        ("enable", _enable, "enable a rule"),
        ("disable", _disable, "disable a rule"),
        ("get", _get, "show a rule and its status"),
        ("delete", _delete, "delete a rule"),
    ):
        add_command(verbs, verb, handler, help_text).add_argument(
            "name", metavar="NAME", help="rule name: NAME or /NS/NAME"
        )

    add_list_options(add_command(verbs, "list", _list, "list rules"))
