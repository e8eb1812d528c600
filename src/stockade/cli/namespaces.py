"""``stockade namespace``: list namespaces and show what one contains."""

from __future__ import annotations

import argparse

from stockade.cli.client import Json
from stockade.cli.context import Context, Subparsers, add_command, add_group
from stockade.cli.names import Collection, collection_path, parse_namespace
from stockade.cli.output import records

__all__ = ["NAMESPACE_COLLECTIONS", "register"]

# Like the JS client's namespaces.get(): one list call per collection, in this order.
NAMESPACE_COLLECTIONS: tuple[Collection, ...] = ("packages", "actions", "triggers", "rules")
# The server's maximum page; a namespace listing should not stop at the default 30.
NAMESPACE_PAGE = 200


def _list(ctx: Context, args: argparse.Namespace) -> int:
    """``namespace list``: the namespaces the credentials can use."""
    reply = ctx.client.get("namespaces")
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    names = reply.data if isinstance(reply.data, list) else []
    ctx.out.table(["NAMESPACE"], [[str(name)] for name in names])
    return 0


def _real_name(namespace: str, contents: dict[str, list[dict[str, Json]]]) -> str:
    """The namespace's real name: ``_`` is resolved from any entity's ``namespace`` field."""
    if namespace != "_":
        return namespace
    for entities in contents.values():
        for entity in entities:
            if isinstance(entity.get("namespace"), str):
                return str(entity["namespace"]).split("/", 1)[0]
    return namespace


def _entity_label(entity: Json) -> str:
    """``/ns[/pkg]/name`` plus visibility, as ``wsk namespace get`` shows entities."""
    path = f"/{entity.get('namespace')}/{entity.get('name')}"
    return f"{path}  {'shared' if entity.get('publish') else 'private'}"


def _get(ctx: Context, args: argparse.Namespace) -> int:
    """``namespace get [NAMESPACE]``: packages, actions, triggers and rules in one view."""
    namespace = parse_namespace(args.namespace) if args.namespace else ctx.namespace
    contents: dict[str, list[dict[str, Json]]] = {}
    for collection in NAMESPACE_COLLECTIONS:
        reply = ctx.client.get(collection_path(namespace, collection), {"limit": NAMESPACE_PAGE})
        contents[collection] = records(reply.data)
    if ctx.out.json_mode:
        ctx.out.json(contents)
        return 0
    ctx.out.line(f"Entities in namespace: {_real_name(namespace, contents)}")
    for collection in NAMESPACE_COLLECTIONS:
        ctx.out.line(collection)
        for entity in contents[collection]:
            ctx.out.line(f"  {_entity_label(entity)}")
    return 0


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add the ``namespace`` command group."""
    verbs = add_group(groups, "namespace", "work with namespaces")
    add_command(verbs, "list", _list, "list the namespaces your credentials can use")
    get = add_command(verbs, "get", _get, "list the packages, actions, triggers and rules of a namespace")
    get.add_argument("namespace", metavar="NAMESPACE", nargs="?", help="default: your namespace")
