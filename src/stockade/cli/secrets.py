"""``stockade secret``: set, rotate, list, get and delete secrets.

Values are read from standard input or a file, never from the command line (where they would
land in shell history and process listings), and no command prints one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stockade.cli.client import CliError
from stockade.cli.context import Context, Subparsers, add_command, add_group
from stockade.cli.names import segment
from stockade.cli.output import format_time, records

__all__ = ["read_value", "register"]

MAX_SECRET_BYTES = 64 * 1024


def read_value(from_file: str | None) -> str:
    """The secret value from ``--from-file`` or standard input (one trailing newline dropped)."""
    if from_file:
        try:
            data = Path(from_file).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {from_file}: {exc.strerror}", exit_code=2) from None
    else:
        if sys.stdin.isatty():
            print("secret value (end with Ctrl-D):", file=sys.stderr)
        data = sys.stdin.buffer.read(MAX_SECRET_BYTES + 2)
    if len(data) > MAX_SECRET_BYTES + 1:
        raise CliError(f"the secret is larger than {MAX_SECRET_BYTES} bytes", exit_code=2)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise CliError("the secret must be UTF-8 text", exit_code=2) from None
    text = text[:-1] if text.endswith("\n") else text
    if not text:
        raise CliError("the secret is empty", exit_code=2)
    return text


def _path(ctx: Context, name: str | None = None) -> str:
    base = f"namespaces/{segment(ctx.namespace)}/secrets"
    return f"{base}/{segment(name)}" if name is not None else base


def _set(ctx: Context, args: argparse.Namespace) -> int:
    """``secret set``: create, or add a version to, a secret."""
    reply = ctx.client.put(_path(ctx, args.name), {"value": read_value(args.from_file)}, overwrite=True)
    version = reply.data.get("version") if isinstance(reply.data, dict) else "?"
    ctx.out.result(f"set secret {args.name} (version {version})", reply)
    return 0


def _rotate(ctx: Context, args: argparse.Namespace) -> int:
    """``secret rotate``: a new version of an existing secret."""
    reply = ctx.client.post(_path(ctx, args.name), {"value": read_value(args.from_file)})
    version = reply.data.get("version") if isinstance(reply.data, dict) else "?"
    ctx.out.result(f"rotated secret {args.name} (now version {version})", reply)
    return 0


def _list(ctx: Context, args: argparse.Namespace) -> int:
    """``secret list``."""
    reply = ctx.client.get(_path(ctx))
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = [
        [str(s.get("name")), str(s.get("version")), format_time(s.get("created")), str(s.get("fingerprint"))]
        for s in records(reply.data)
    ]
    ctx.out.table(["NAME", "VERSION", "CREATED", "FINGERPRINT"], rows)
    return 0


def _get(ctx: Context, args: argparse.Namespace) -> int:
    """``secret get``: versions and recent accesses (never the value)."""
    reply = ctx.client.get(_path(ctx, args.name))
    if ctx.out.json_mode or not isinstance(reply.data, dict):
        ctx.out.raw(reply)
        return 0
    data = reply.data
    versions = ", ".join(str(v.get("version")) for v in records(data.get("versions")))
    access = "; ".join(
        f"{a.get('action')} at {format_time(a.get('at'))} (v{a.get('version')})"
        for a in records(data.get("recentAccess"))
    )
    ctx.out.fields(
        f"secret {args.name}",
        [
            ("version", str(data.get("version"))),
            ("versions", versions),
            ("created", format_time(data.get("created"))),
            ("fingerprint", str(data.get("fingerprint"))),
            ("recent access", access or "(none)"),
        ],
    )
    return 0


def _delete(ctx: Context, args: argparse.Namespace) -> int:
    """``secret delete``: every version."""
    reply = ctx.client.delete(_path(ctx, args.name))
    ctx.out.result(f"deleted secret {args.name}", reply)
    return 0


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add the ``secret`` command group."""
    verbs = add_group(groups, "secret", "work with secrets (values from stdin or a file, never argv)")
    for verb, handler, text in (
        ("set", _set, "create a secret or add a version; the value comes from stdin or --from-file"),
        ("rotate", _rotate, "add a new version to an existing secret"),
    ):
        parser = add_command(verbs, verb, handler, text)
        parser.add_argument("name", metavar="NAME", help="secret name")
        parser.add_argument("--from-file", metavar="FILE", help="read the value from FILE instead of stdin")
    add_command(verbs, "list", _list, "list secrets (names, versions, fingerprints)")
    get = add_command(verbs, "get", _get, "show a secret's versions and recent accesses")
    get.add_argument("name", metavar="NAME", help="secret name")
    delete = add_command(verbs, "delete", _delete, "delete a secret and all its versions")
    delete.add_argument("name", metavar="NAME", help="secret name")
