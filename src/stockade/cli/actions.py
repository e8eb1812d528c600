"""``stockade action``: create, update, get, list, delete and invoke actions."""

from __future__ import annotations

import argparse
import base64
from pathlib import Path

from stockade.cli.client import EXIT_FAILED_ACTIVATION, CliError, Json, Reply, error_from_reply, is_error_envelope
from stockade.cli.context import (
    Context,
    Subparsers,
    add_command,
    add_group,
    add_list_options,
    list_params,
)
from stockade.cli.names import QualifiedName, collection_path, parse_package_ref, segment
from stockade.cli.output import annotation, format_kvs, format_time, records
from stockade.cli.params import (
    add_annotation_options,
    add_param_options,
    build_kvs,
    build_payload,
)

__all__ = ["KIND_BY_SUFFIX", "action_body", "read_exec", "register", "secret_refs", "web_annotations"]

KIND_BY_SUFFIX = {".py": "python:3", ".js": "nodejs:default"}
# Archives travel base64-encoded and need an explicit --kind (the runtime cannot be guessed).
BINARY_SUFFIXES = frozenset({".zip", ".jar"})
WEB_CHOICES = ("true", "yes", "false", "no", "raw")


def read_exec(path: str, kind: str | None, main: str | None) -> dict[str, Json]:
    """The ``exec`` of a code action read from FILE, its kind inferred from the extension."""
    file = Path(path)
    suffix = file.suffix.lower()
    try:
        if suffix in BINARY_SUFFIXES:
            if not kind:
                raise CliError(f"--kind is required for {suffix} actions (e.g. --kind python:3)", exit_code=2)
            code, binary = base64.b64encode(file.read_bytes()).decode("ascii"), True
        else:
            kind = kind or KIND_BY_SUFFIX.get(suffix)
            if not kind:
                raise CliError(f"cannot infer the kind of {path} from its extension; pass --kind", exit_code=2)
            code, binary = file.read_text(encoding="utf-8"), False
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", exit_code=2) from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text; zip it and pass --kind", exit_code=2) from exc
    exec_: dict[str, Json] = {"kind": kind, "code": code, "binary": binary}
    if main:
        exec_["main"] = main
    return exec_


def secret_refs(pairs: list[str]) -> dict[str, Json]:
    """``["ENV=name", ...]`` → the ``secrets`` annotation ``{"ENV": "name"}``."""
    refs: dict[str, Json] = {}
    for pair in pairs:
        env, sep, name = pair.partition("=")
        if not sep or not env or not name:
            raise CliError(f"--secret takes ENV=SECRET, got '{pair}'", exit_code=2)
        refs[env] = name
    return refs


def web_annotations(mode: str) -> dict[str, Json]:
    """The annotations ``--web`` sets, as ``wsk`` does (``true`` also seals parameters with ``final``)."""
    mode = mode.lower()
    if mode in ("true", "yes"):
        return {"web-export": True, "raw-http": False, "final": True}
    if mode == "raw":
        return {"web-export": True, "raw-http": True, "final": True}
    return {"web-export": False, "raw-http": False, "final": False}


def _sequence_exec(components: str, ctx: Context) -> dict[str, Json]:
    """``{"kind": "sequence", "components": ["/ns/a", ...]}`` from ``a,b,c``."""
    names = [part.strip() for part in components.split(",") if part.strip()]
    if not names:
        raise CliError("--sequence needs at least one action name", exit_code=2)
    return {"kind": "sequence", "components": [ctx.action_name(name).fqn for name in names]}


def copy_body(ctx: Context, source: str) -> dict[str, Json]:
    """The PUT body that copies action ``source``: its code, limits, annotations and parameters.

    Parameter values come back from the API as fingerprints (with ``encryption``); sent back as
    they are, the platform re-seals the stored values for the copy, so none is ever revealed here.
    """
    original = ctx.client.request("GET", ctx.action_name(source).path("actions"), params={"code": "true"}).data
    if not isinstance(original, dict) or not isinstance(original.get("exec"), dict):
        raise CliError(f"cannot copy {source}: the API returned no action", exit_code=7)
    exec_ = {k: v for k, v in original["exec"].items() if k in ("kind", "code", "main", "components", "binary")}
    body: dict[str, Json] = {"exec": exec_, "limits": original.get("limits") or {}}
    if exec_.get("kind") != "sequence":
        body["parameters"] = list(original.get("parameters") or [])
    body["annotations"] = [a for a in original.get("annotations") or [] if a.get("key") != "exec"]
    return body


def _merged(base: Json, overlay: Json) -> list[Json]:
    keys = {item["key"] for item in overlay}
    return [item for item in base if item.get("key") not in keys] + list(overlay)


def action_body(ctx: Context, args: argparse.Namespace, *, require_exec: bool) -> dict[str, Json]:
    """The PUT body for ``action create``/``update``; fields not given are left out."""
    if args.sequence and args.file:
        raise CliError("give either FILE or --sequence, not both", exit_code=2)
    copy = getattr(args, "copy", None)
    if copy is None:
        return _own_body(ctx, args, require_exec=require_exec)
    if args.sequence or args.file:
        raise CliError("give FILE, --sequence or --copy, not more than one", exit_code=2)
    copied = copy_body(ctx, copy)
    own = _own_body(ctx, args, require_exec=False)
    for field in ("parameters", "annotations"):
        if field in own:
            copied[field] = _merged(copied.get(field) or [], own[field])
    if "limits" in own:
        copied["limits"] = {**(copied.get("limits") or {}), **own["limits"]}
    return copied


def _own_body(ctx: Context, args: argparse.Namespace, *, require_exec: bool) -> dict[str, Json]:
    """The body from FILE or --sequence and the options."""
    body: dict[str, Json] = {}
    if args.sequence:
        body["exec"] = _sequence_exec(args.sequence, ctx)
    elif args.file:
        body["exec"] = read_exec(args.file, args.kind, args.main)
    elif require_exec:
        raise CliError("action create needs FILE, --sequence or --copy", exit_code=2)
    elif args.kind or args.main:
        raise CliError("--kind and --main need FILE", exit_code=2)
    parameters = build_kvs(args.params, args.param_file)
    if parameters is not None:
        body["parameters"] = parameters
    annotations = build_payload(args.annotations, args.annotation_file)
    if args.web:
        annotations.update(web_annotations(args.web))
    if args.secrets:
        annotations["secrets"] = secret_refs(args.secrets)
    if annotations or args.annotations or args.annotation_file or args.secrets:
        body["annotations"] = [{"key": key, "value": value} for key, value in annotations.items()]
    limits = {
        key: value
        for key, value in (("timeout", args.timeout), ("memory", args.memory), ("logs", args.logsize))
        if value is not None
    }
    if limits:
        body["limits"] = limits
    return body


def _put(ctx: Context, args: argparse.Namespace, *, overwrite: bool) -> int:
    """PUT the action; ``overwrite`` makes it an update."""
    name = ctx.action_name(args.name)
    body = action_body(ctx, args, require_exec=not overwrite)
    params: dict[str, str | int] = {"overwrite": "true"} if overwrite else {}
    if args.accept_risk is not None:
        params["acceptRisk"] = args.accept_risk  # the deploy gate records it with your identity
    reply = ctx.client.request("PUT", name.path("actions"), params=params or None, body=body)
    ctx.out.result(f"{'updated' if overwrite else 'created'} action {args.name}", reply)
    return 0


def _create(ctx: Context, args: argparse.Namespace) -> int:
    """``action create``."""
    return _put(ctx, args, overwrite=False)


def _update(ctx: Context, args: argparse.Namespace) -> int:
    """``action update``."""
    return _put(ctx, args, overwrite=True)


def _describe(ctx: Context, action: Json, *, show_code: bool) -> None:
    """Print the readable summary of one action."""
    exec_ = action.get("exec") or {}
    limits = action.get("limits") or {}
    web = "yes" if annotation(action, "web-export") is True else "no"
    if web == "yes" and annotation(action, "raw-http") is True:
        web = "raw"
    fields = [
        ("kind", str(exec_.get("kind", annotation(action, "exec") or ""))),
        ("version", str(action.get("version", ""))),
        ("updated", format_time(action.get("updated"))),
        ("shared", "yes" if action.get("publish") else "no"),
        ("web", web),
        (
            "limits",
            f"timeout {limits.get('timeout')} ms, memory {limits.get('memory')} MB, logs {limits.get('logs')} MB",
        ),
        ("parameters", format_kvs(action.get("parameters"))),
        ("annotations", format_kvs(action.get("annotations"))),
    ]
    if exec_.get("kind") == "sequence":
        fields.insert(1, ("components", ", ".join(str(c) for c in exec_.get("components", []))))
    elif exec_.get("main"):
        fields.insert(1, ("main", str(exec_["main"])))
    ctx.out.fields(f"action /{action.get('namespace')}/{action.get('name')}", fields)
    if show_code and isinstance(exec_.get("code"), str):
        ctx.out.line()
        if exec_.get("binary"):
            ctx.out.line(f"(binary code: {len(exec_['code'])} base64 characters)")
        else:
            ctx.out.line(exec_["code"].rstrip("\n"))


def _get(ctx: Context, args: argparse.Namespace) -> int:
    """``action get``: a summary, or the raw entity with ``--json``."""
    name = ctx.action_name(args.name)
    reply = ctx.client.get(name.path("actions"), {"code": "true" if args.code else "false"})
    if ctx.out.json_mode or not isinstance(reply.data, dict):
        ctx.out.raw(reply)
    else:
        _describe(ctx, reply.data, show_code=args.code)
    return 0


def _list(ctx: Context, args: argparse.Namespace) -> int:
    """``action list [PACKAGE]``."""
    namespace, package = ctx.namespace, None
    if args.package:
        namespace, package = parse_package_ref(args.package, ctx.namespace)
    path = collection_path(namespace, "actions")
    if package:
        # The trailing slash is what makes the server list one package.
        path = f"{path}/{segment(package)}/"
    reply = ctx.client.get(path, list_params(args))
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = [
        [
            f"/{entity.get('namespace')}/{entity.get('name')}",
            str(annotation(entity, "exec") or (entity.get("exec") or {}).get("kind") or ""),
            str(entity.get("version", "")),
            format_time(entity.get("updated")),
        ]
        for entity in records(reply.data)
    ]
    ctx.out.table(["NAME", "KIND", "VERSION", "UPDATED"], rows)
    return 0


def _delete(ctx: Context, args: argparse.Namespace) -> int:
    """``action delete``."""
    name = ctx.action_name(args.name)
    reply = ctx.client.delete(name.path("actions"))
    ctx.out.result(f"deleted action {args.name}", reply)
    return 0


def _failed_activation(ctx: Context, name: QualifiedName, reply: Reply) -> int:
    """Print a failed blocking invoke's record or result, and explain on stderr."""
    ctx.out.raw(reply)
    data = reply.data
    status = "application error"
    if isinstance(data, dict) and isinstance(data.get("response"), dict):
        status = str(data["response"].get("status", status))
    activation_id = reply.activation_id or (data.get("activationId") if isinstance(data, dict) else None)
    suffix = f" (activation id {activation_id})" if activation_id else ""
    ctx.out.error(f"error: action {name.fqn} failed with status '{status}'{suffix}")
    return EXIT_FAILED_ACTIVATION if reply.status == 502 else 7


def _invoke(ctx: Context, args: argparse.Namespace) -> int:
    """``action invoke``: non-blocking prints the id; ``-b`` the record; ``-r`` the result."""
    name = ctx.action_name(args.name)
    blocking = bool(args.blocking or args.result)
    query: dict[str, str | int] = {}
    if blocking:
        query["blocking"] = "true"
    if args.result:
        query["result"] = "true"
    payload = build_payload(args.params, args.param_file)
    reply = ctx.client.request("POST", name.path("actions"), params=query, body=payload, accept=(500, 502))
    if reply.status >= 400:
        # A failed blocking invoke returns the activation (or result); anything else is a real error.
        if not blocking or not reply.is_json or is_error_envelope(reply):
            raise error_from_reply(reply)
        return _failed_activation(ctx, name, reply)
    activation_id = (reply.data.get("activationId") if isinstance(reply.data, dict) else None) or reply.activation_id
    if reply.status == 202:
        if ctx.out.json_mode:
            ctx.out.raw(reply)
        elif blocking:
            ctx.out.ok(f"invoked {name.fqn}, but the request has not yet finished, with id {activation_id}")
        else:
            ctx.out.ok(f"invoked {name.fqn} with id {activation_id}")
        return 0
    if not args.result:
        ctx.out.ok(f"invoked {name.fqn} with id {activation_id}")
    ctx.out.raw(reply)
    return 0


def _code_options(parser: argparse.ArgumentParser, *, file_required: bool) -> None:
    """Options shared by ``create`` and ``update``."""
    parser.add_argument("name", metavar="NAME", help="action name: NAME, PKG/NAME, /NS/NAME or /NS/PKG/NAME")
    parser.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        help=".py/.js source (kind inferred) or .zip archive (needs --kind)"
        + ("" if file_required else "; omit to keep the code"),
    )
    parser.add_argument("--kind", metavar="KIND", help="runtime kind, e.g. python:3 or nodejs:default")
    parser.add_argument("--main", metavar="NAME", help="entry function (default main)")
    parser.add_argument("--sequence", metavar="A,B,C", help="make a sequence of these actions instead of FILE")
    parser.add_argument(
        "--copy",
        metavar="ACTION",
        help="copy ACTION (code, limits, annotations, parameter values without revealing them) instead of FILE",
    )
    add_param_options(parser)
    add_annotation_options(parser)
    parser.add_argument("-t", "--timeout", type=int, metavar="MS", help="time limit in milliseconds")
    parser.add_argument("-m", "--memory", type=int, metavar="MB", help="memory limit in megabytes")
    parser.add_argument("-l", "--logsize", type=int, metavar="MB", help="log size limit in megabytes")
    parser.add_argument(
        "--accept-risk",
        metavar="REASON",
        help="deploy despite blocking security-gate findings; the reason is recorded with your identity",
    )
    parser.add_argument(
        "--secret",
        dest="secrets",
        action="append",
        metavar="ENV=SECRET",
        help="give the action secret SECRET as environment variable ENV at run time; repeatable",
    )
    parser.add_argument(
        "--web",
        choices=WEB_CHOICES,
        metavar="true|false|raw",
        help="make a web action (true also sets final; raw adds raw-http)",
    )


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add the ``action`` command group."""
    verbs = add_group(groups, "action", "work with actions")
    _code_options(add_command(verbs, "create", _create, "create an action"), file_required=True)
    _code_options(add_command(verbs, "update", _update, "update an action (or create it)"), file_required=False)

    get = add_command(verbs, "get", _get, "show an action")
    get.add_argument("name", metavar="NAME", help="action name: NAME, PKG/NAME, /NS/NAME or /NS/PKG/NAME")
    get.add_argument(
        "--code", action=argparse.BooleanOptionalAction, default=False, help="include the code (default: summary)"
    )

    list_ = add_command(verbs, "list", _list, "list actions")
    list_.add_argument("package", metavar="PACKAGE", nargs="?", help="PKG, /NS or /NS/PKG (default: all actions)")
    add_list_options(list_)

    delete = add_command(verbs, "delete", _delete, "delete an action")
    delete.add_argument("name", metavar="NAME", help="action name: NAME, PKG/NAME, /NS/NAME or /NS/PKG/NAME")

    invoke = add_command(verbs, "invoke", _invoke, "invoke an action")
    invoke.add_argument("name", metavar="NAME", help="action name: NAME, PKG/NAME, /NS/NAME or /NS/PKG/NAME")
    add_param_options(invoke)
    invoke.add_argument("-b", "--blocking", action="store_true", help="wait for the result (up to 60 s)")
    invoke.add_argument("-r", "--result", action="store_true", help="wait and print only the result (implies -b)")
