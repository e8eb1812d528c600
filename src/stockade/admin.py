"""``python -m stockade.admin``: operator commands run on the platform host (like wskadmin).

They work on the store and key files directly, with the same settings as ``stockade up``, and
are safe to run while the platform serves: every change is a conditional write.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from stockade.api.app import default_store
from stockade.config import Settings, load_settings
from stockade.domain import SystemClock
from stockade.errors import PlatformError
from stockade.observability import configure_logging
from stockade.services import build_services

__all__ = ["main"]


class _NoRunner:
    """Admin commands never run actions; this runner says so if anything tries."""

    async def run_action(self, *args: object, **kwargs: object) -> NoReturn:
        """Refuse."""
        raise PlatformError("stockade admin does not run actions")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stockade admin", description="Operator commands (run on the platform host).")
    parser.add_argument("--config", type=Path, help="settings file (TOML)")
    parser.add_argument("--data-dir", type=Path, help="where state lives (default ~/.stockade)")
    parser.add_argument("--store", help="'sqlite' (default) or a postgresql:// URL")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "rotate-master-key",
        help="new master key; rewrap every data key; drop the old master key once nothing needs it",
    )
    data = commands.add_parser("rotate-data-key", help="new data key for a namespace; re-encrypt its values")
    data.add_argument("namespace")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    env = dict(os.environ)
    if args.data_dir is not None:
        env["STOCKADE_DATA_DIR"] = str(args.data_dir)
    if args.store is not None:
        env["STOCKADE_STORE__URL"] = args.store
    return load_settings(args.config, env)


async def _run(args: argparse.Namespace, settings: Settings) -> str:
    store = default_store(settings)
    await store.open()
    try:
        services = build_services(settings, store, _NoRunner(), SystemClock())
        await services.vault.verify()
        if args.command == "rotate-master-key":
            report = await services.rotation.rotate_master_key(settings.master_key_path)
            retired = ", ".join(report.retired) or "none yet (rerun to finish)"
            return f"ok: master key {report.new_key_id}; rewrapped {report.rewritten} data keys; retired {retired}"
        if await store.get_namespace(args.namespace) is None:
            raise PlatformError(f"namespace {args.namespace!r} does not exist")
        report = await services.rotation.rotate_data_key(args.namespace)
        retired = ", ".join(report.retired) or "none"
        return f"ok: data key {report.new_key_id}; re-encrypted {report.rewritten} values; retired {retired}"
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one admin command."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging("warning", "console")
    try:
        settings = _settings(args)
        print(asyncio.run(_run(args, settings)))
    except PlatformError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
