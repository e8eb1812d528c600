"""``stockade package``: create, update, bind, get, list and delete packages."""

from __future__ import annotations

import argparse

from stockade.cli.client import Json
from stockade.cli.context import Context, Subparsers, add_command, add_group, add_list_options, list_params
from stockade.cli.names import collection_path, parse_namespace
from stockade.cli.output import format_kvs, format_time, records
from stockade.cli.params import add_annotation_options, add_param_options, entity_body

__all__ = ["package_body", "register"]


def package_body(args: argparse.Namespace) -> dict[str, Json]:
    """The PUT body of ``package create``/``update``; fields not given are left out."""
    body = entity_body(args)
    if args.shared is not None:
        body["publish"] = args.shared == "yes"
    return body


def _put(ctx: Context, args: argparse.Namespace, *, overwrite: bool) -> int:
    """PUT the package; ``overwrite`` makes it an update."""
    name = ctx.entity_name(args.name, "package")
    reply = ctx.client.put(name.path("packages"), package_body(args), overwrite=overwrite)
    ctx.out.result(f"{'updated' if overwrite else 'created'} package {args.name}", reply)
    return 0


def _create(ctx: Context, args: argparse.Namespace) -> int:
    """``package create``."""
    return _put(ctx, args, overwrite=False)


def _update(ctx: Context, args: argparse.Namespace) -> int:
    """``package update``."""
    return _put(ctx, args, overwrite=True)


def _bind(ctx: Context, args: argparse.Namespace) -> int:
    """``package bind SOURCE NAME``: a binding to another (possibly shared) package."""
    source = ctx.entity_name(args.source, "package")
    name = ctx.entity_name(args.name, "package")
    body = entity_body(args)
    body["binding"] = {"namespace": source.namespace, "name": source.name}
    reply = ctx.client.put(name.path("packages"), body)
    ctx.out.result(f"created binding {args.name}", reply)
    return 0


def _binding_text(binding: Json) -> str:
    """``/ns/pkg`` for a binding, empty for a plain package."""
    if isinstance(binding, dict) and binding.get("name"):
        return f"/{binding.get('namespace')}/{binding.get('name')}"
    return ""


def _get(ctx: Context, args: argparse.Namespace) -> int:
    """``package get``: a summary, or the raw entity with ``--json``."""
    name = ctx.entity_name(args.name, "package")
    reply = ctx.client.get(name.path("packages"))
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    package = reply.data
    if not isinstance(package, dict):
        ctx.out.raw(reply)
        return 0
    actions = ", ".join(str(item.get("name")) for item in package.get("actions") or []) or "(none)"
    feeds = ", ".join(str(item.get("name")) for item in package.get("feeds") or []) or "(none)"
    fields = [
        ("version", str(package.get("version", ""))),
        ("updated", format_time(package.get("updated"))),
        ("shared", "yes" if package.get("publish") else "no"),
        ("binding", _binding_text(package.get("binding")) or "(none)"),
        ("parameters", format_kvs(package.get("parameters"))),
        ("annotations", format_kvs(package.get("annotations"))),
        ("actions", actions),
        ("feeds", feeds),
    ]
    ctx.out.fields(f"package /{package.get('namespace')}/{package.get('name')}", fields)
    return 0


def _list(ctx: Context, args: argparse.Namespace) -> int:
    """``package list [/NAMESPACE]``."""
    namespace = parse_namespace(args.namespace) if args.namespace else ctx.namespace
    reply = ctx.client.get(collection_path(namespace, "packages"), list_params(args))
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = [
        [
            f"/{entity.get('namespace')}/{entity.get('name')}",
            "shared" if entity.get("publish") else "private",
            _binding_text(entity.get("binding")),
            str(entity.get("version", "")),
            format_time(entity.get("updated")),
        ]
        for entity in records(reply.data)
    ]
    ctx.out.table(["NAME", "VISIBILITY", "BINDING", "VERSION", "UPDATED"], rows)
    return 0


def _delete(ctx: Context, args: argparse.Namespace) -> int:
    """``package delete [--force]``."""
    name = ctx.entity_name(args.name, "package")
    reply = ctx.client.delete(name.path("packages"), {"force": "true"} if args.force else None)
    ctx.out.result(f"deleted package {args.name}", reply)
    return 0


def _entity_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``create`` and ``update``."""
    parser.add_argument("name", metavar="NAME", help="package name: NAME or /NS/NAME")
    add_param_options(parser, what="default parameter")
    add_annotation_options(parser)
    parser.add_argument("--shared", choices=("yes", "no"), help="share the package with other namespaces")


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add the ``package`` command group."""
    verbs = add_group(groups, "package", "work with packages")
    _entity_options(add_command(verbs, "create", _create, "create a package"))
    _entity_options(add_command(verbs, "update", _update, "update a package (or create it)"))

    bind = add_command(verbs, "bind", _bind, "bind a package to another package, with its own parameters")
    bind.add_argument("source", metavar="SOURCE", help="the package to bind to: NAME or /NS/NAME")
    bind.add_argument("name", metavar="NAME", help="the new binding's name")
    add_param_options(bind, what="default parameter")
    add_annotation_options(bind)

    get = add_command(verbs, "get", _get, "show a package")
    get.add_argument("name", metavar="NAME", help="package name: NAME or /NS/NAME")

    list_ = add_command(verbs, "list", _list, "list packages")
    list_.add_argument("namespace", metavar="NAMESPACE", nargs="?", help="list another namespace's shared packages")
    add_list_options(list_)

    delete = add_command(verbs, "delete", _delete, "delete a package")
    delete.add_argument("name", metavar="NAME", help="package name: NAME or /NS/NAME")
    delete.add_argument("--force", action="store_true", help="also delete the actions the package contains")
