"""The ``stockade`` command: argument parsing, dispatch, exit codes, and ``up``.

The CLI speaks HTTP only. ``stockade up`` does not import the server either: it replaces this
process with ``python -m stockade.server`` and forwards every argument after ``up`` untouched.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn, TextIO

import httpx

from stockade.cli import (
    access,
    actions,
    activations,
    advisories,
    alerts,
    apis,
    deploy,
    events,
    namespaces,
    packages,
    rules,
    scans,
    secrets,
    triggers,
)
from stockade.cli.client import CliError, cli_version
from stockade.cli.context import Clock, Context, SystemClock, add_global_options, add_global_options_to_commands
from stockade.cli.output import Output
from stockade.cli.props import load_props

__all__ = ["SERVER_MODULE", "build_parser", "exec_platform", "main", "platform_argv", "run", "up_arguments"]

SERVER_MODULE = "stockade.server"
# Commands that run on the platform host: the CLI replaces itself with their module.
HOST_COMMANDS = {
    "up": SERVER_MODULE,
    "admin": "stockade.admin",
    "controller": "stockade.roles.controller",
    "invoker": "stockade.roles.invoker",
}
EXIT_INTERRUPTED = 130

_EPILOG = """\
configuration:
  APIHOST, AUTH (uuid:key) and NAMESPACE are read from $WSK_CONFIG_FILE, else ~/.wskprops;
  --apihost, --auth and --insecure override them. APIHOST without a scheme means https://.

exit codes:
  0 ok             1 failed activation   2 bad request (400/413/415) or usage
  3 auth (401/403) 4 not found (404)     5 conflict (409)
  6 throttled (429) 7 server error (5xx) 8 cannot reach APIHOST
"""

# Global options that take a value, so the scan for ``up`` can step over them.
_VALUE_OPTIONS = frozenset({"--apihost", "--auth"})


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also the source of the ``--help`` snapshots)."""
    parser = argparse.ArgumentParser(
        prog="stockade",
        description="Stockade: an OpenWhisk-compatible serverless platform. This CLI talks to its REST API.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"stockade {cli_version()}")
    add_global_options(parser, suppress=False)
    groups = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (
        actions,
        activations,
        packages,
        triggers,
        rules,
        namespaces,
        secrets,
        advisories,
        scans,
        access,
        events,
        alerts,
        apis,
        deploy,
    ):
        module.register(groups)
    # Registered for the help listing only: ``run`` forwards ``up`` before argparse sees it.
    groups.add_parser("up", help="start the platform (arguments go to python -m stockade.server)", add_help=False)
    groups.add_parser(
        "controller", help="start a scale-out controller (python -m stockade.roles.controller)", add_help=False
    )
    groups.add_parser("invoker", help="start a scale-out invoker (python -m stockade.roles.invoker)", add_help=False)
    groups.add_parser(
        "admin",
        help="operator commands on the platform host, e.g. rotate-master-key (python -m stockade.admin)",
        add_help=False,
    )
    add_global_options_to_commands(parser)
    return parser


def up_arguments(argv: Sequence[str]) -> list[str] | None:
    """The arguments after ``up`` when the command is ``up``, else ``None``.

    Global options before ``up`` are skipped; everything after it (``--help`` included) belongs
    to the server.
    """
    found = host_command(argv)
    return found[1] if found is not None and found[0] == SERVER_MODULE else None


def host_command(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """``(module, arguments)`` when the command runs on the host (``up``, ``admin``), else None."""
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in _VALUE_OPTIONS:
            index += 2
            continue
        if arg.startswith("-"):
            if arg in ("-h", "--help", "--version"):
                return None
            index += 1
            continue
        module = HOST_COMMANDS.get(arg)
        return (module, list(argv[index + 1 :])) if module else None
    return None


def platform_argv(arguments: Sequence[str]) -> list[str]:
    """The argv of the server process: this interpreter running ``-m stockade.server``."""
    return [sys.executable, "-m", SERVER_MODULE, *arguments]


def exec_platform(arguments: Sequence[str], module: str = SERVER_MODULE) -> NoReturn:
    """Replace this process with ``python -m module``; never returns."""
    # execv, not subprocess: signals and the exit status go straight to the server, no shell involved.
    os.execv(sys.executable, [sys.executable, "-m", module, *arguments])  # noqa: S606 — fixed interpreter path, no shell


def _exit_status(exc: SystemExit) -> int:
    """The integer status of argparse's ``SystemExit`` (help → 0, usage error → 2)."""
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 2


def run(
    argv: Sequence[str],
    *,
    transport: httpx.BaseTransport | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> int:
    """Run one CLI command and return its exit code; the keyword arguments exist for tests."""
    err = stderr if stderr is not None else sys.stderr
    local_scan = scans.local_scan_arguments(argv)
    if local_scan is not None:
        try:
            exec_platform(local_scan, scans.SCANNER_MODULE)
        except OSError as exc:
            err.write(f"error: cannot start the scanner: {exc}\n")
            return 1
    forwarded = host_command(argv)
    if forwarded is not None:
        try:
            exec_platform(forwarded[1], forwarded[0])
        except OSError as exc:
            err.write(f"error: cannot start the platform: {exc}\n")
            return 1
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as exc:
        return _exit_status(exc)
    out = Output(stdout if stdout is not None else sys.stdout, err, json_mode=bool(args.json))
    ctx = Context(
        props=load_props(
            apihost=args.apihost,
            auth=args.auth,
            insecure=bool(args.insecure),
            sign=bool(getattr(args, "sign", False)),
            environ=environ,
        ),
        out=out,
        transport=transport,
        clock=clock if clock is not None else SystemClock(),
    )
    try:
        status: int = args.handler(ctx, args)
    except CliError as exc:
        out.error(exc.render())
        return exc.exit_code
    except KeyboardInterrupt:
        out.error("error: interrupted")
        return EXIT_INTERRUPTED
    finally:
        ctx.close()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: ``stockade ...``."""
    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
