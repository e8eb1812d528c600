"""``stockade trigger``: create, update, fire, get, list and delete triggers."""

from __future__ import annotations

import argparse

from stockade.cli.context import Context, Subparsers, add_command, add_group, add_list_options, list_params
from stockade.cli.names import collection_path
from stockade.cli.output import format_kvs, format_time, records
from stockade.cli.params import add_annotation_options, add_param_options, build_payload, entity_body

__all__ = ["register"]


def _put(ctx: Context, args: argparse.Namespace, *, overwrite: bool) -> int:
    """PUT the trigger; ``overwrite`` makes it an update."""
    name = ctx.entity_name(args.name, "trigger")
    reply = ctx.client.put(name.path("triggers"), entity_body(args), overwrite=overwrite)
    ctx.out.result(f"{'updated' if overwrite else 'created'} trigger {args.name}", reply)
    return 0


def _create(ctx: Context, args: argparse.Namespace) -> int:
    """``trigger create``."""
    return _put(ctx, args, overwrite=False)


def _update(ctx: Context, args: argparse.Namespace) -> int:
    """``trigger update``."""
    return _put(ctx, args, overwrite=True)


def _fire(ctx: Context, args: argparse.Namespace) -> int:
    """``trigger fire``: 202 with an activation id, or 204 when no rule is active."""
    name = ctx.entity_name(args.name, "trigger")
    reply = ctx.client.post(name.path("triggers"), build_payload(args.params, args.param_file))
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    if reply.status == 204 or not isinstance(reply.data, dict):
        ctx.out.ok(f"triggered {name.fqn}, but it has no active rules (no activation recorded)")
        return 0
    ctx.out.ok(f"triggered {name.fqn} with id {reply.data.get('activationId') or reply.activation_id}")
    return 0


def _rules_text(rules: object) -> str:
    """``r1 → /ns/a (active), ...`` from a trigger's ``rules`` map."""
    if not isinstance(rules, dict) or not rules:
        return "(none)"
    parts = []
    for rule_name, rule in rules.items():
        action = rule.get("action") if isinstance(rule, dict) else None
        target = f"/{action.get('path')}/{action.get('name')}" if isinstance(action, dict) else "?"
        status = rule.get("status", "?") if isinstance(rule, dict) else "?"
        parts.append(f"{rule_name} -> {target} ({status})")
    return ", ".join(parts)


def _get(ctx: Context, args: argparse.Namespace) -> int:
    """``trigger get``: a summary, or the raw entity with ``--json``."""
    name = ctx.entity_name(args.name, "trigger")
    reply = ctx.client.get(name.path("triggers"))
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    trigger = reply.data
    if not isinstance(trigger, dict):
        ctx.out.raw(reply)
        return 0
    fields = [
        ("version", str(trigger.get("version", ""))),
        ("updated", format_time(trigger.get("updated"))),
        ("parameters", format_kvs(trigger.get("parameters"))),
        ("annotations", format_kvs(trigger.get("annotations"))),
        ("rules", _rules_text(trigger.get("rules"))),
    ]
    ctx.out.fields(f"trigger /{trigger.get('namespace')}/{trigger.get('name')}", fields)
    return 0


def _list(ctx: Context, args: argparse.Namespace) -> int:
    """``trigger list``."""
    reply = ctx.client.get(collection_path(ctx.namespace, "triggers"), list_params(args))
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = [
        [
            f"/{entity.get('namespace')}/{entity.get('name')}",
            str(entity.get("version", "")),
            format_time(entity.get("updated")),
        ]
        for entity in records(reply.data)
    ]
    ctx.out.table(["NAME", "VERSION", "UPDATED"], rows)
    return 0


def _delete(ctx: Context, args: argparse.Namespace) -> int:
    """``trigger delete`` (rules that use it are left inactive)."""
    name = ctx.entity_name(args.name, "trigger")
    reply = ctx.client.delete(name.path("triggers"))
    ctx.out.result(f"deleted trigger {args.name}", reply)
    return 0


def _entity_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``create`` and ``update``."""
    parser.add_argument("name", metavar="NAME", help="trigger name: NAME or /NS/NAME")
    add_param_options(parser, what="default parameter")
    add_annotation_options(parser)


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add the ``trigger`` command group."""
    verbs = add_group(groups, "trigger", "work with triggers")
    _entity_options(add_command(verbs, "create", _create, "create a trigger"))
    _entity_options(add_command(verbs, "update", _update, "update a trigger (or create it)"))

    fire = add_command(verbs, "fire", _fire, "fire a trigger, running the actions of its active rules")
    fire.add_argument("name", metavar="NAME", help="trigger name: NAME or /NS/NAME")
    add_param_options(fire)

    get = add_command(verbs, "get", _get, "show a trigger")
    get.add_argument("name", metavar="NAME", help="trigger name: NAME or /NS/NAME")

    list_ = add_command(verbs, "list", _list, "list triggers")
    add_list_options(list_)

    delete = add_command(verbs, "delete", _delete, "delete a trigger")
    delete.add_argument("name", metavar="NAME", help="trigger name: NAME or /NS/NAME")
