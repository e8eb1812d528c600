"""``python -m stockade.admin``: operator commands run on the platform host (like wskadmin).

They work on the store and key files directly, with the same settings as ``stockade up``, and
are safe to run while the platform serves: every change is a conditional write.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from stockade.api.app import default_store
from stockade.config import Settings, load_settings
from stockade.domain import RunRequest, SystemClock
from stockade.errors import PlatformError
from stockade.observability import configure_logging
from stockade.security.authz import ROLES
from stockade.services import AuditEvent, Services, build_services
from stockade.store import RoleBinding

__all__ = ["main"]


class _NoRunner:
    """Admin commands never run actions; this runner says so if anything tries."""

    async def run_action(self, request: RunRequest) -> NoReturn:
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
    ns_create = commands.add_parser("namespace-create", help="create a namespace with an owner and one key")
    ns_create.add_argument("namespace")
    ns_create.add_argument("--owner", help="owner subject (default: the namespace name)")
    key_create = commands.add_parser("key-create", help="issue a key for SUBJECT in NAMESPACE")
    key_create.add_argument("namespace")
    key_create.add_argument("subject")
    key_create.add_argument("--role", choices=ROLES, help="grant this role too (required for a new subject)")
    key_list = commands.add_parser("key-list", help="list keys (never their secrets)")
    key_list.add_argument("--namespace")
    key_revoke = commands.add_parser("key-revoke", help="revoke a key; every API process stops accepting it")
    key_revoke.add_argument("uuid")
    key_rotate = commands.add_parser("key-rotate", help="issue a new key for the same subject, then revoke the old one")
    key_rotate.add_argument("uuid")
    verify = commands.add_parser("audit-verify", help="verify an audit chain (the platform chain by default)")
    verify.add_argument("--namespace", default="", help="namespace chain to verify ('' = platform-wide events)")
    export = commands.add_parser("audit-export", help="write an audit chain as JSON lines")
    export.add_argument("--namespace", default="")
    limits = commands.add_parser("limits-set", help="override a namespace's throttles (the others keep theirs)")
    limits.add_argument("namespace")
    limits.add_argument("--invocations-per-minute", type=int, metavar="N")
    limits.add_argument("--concurrent-invocations", type=int, metavar="N")
    limits.add_argument("--fires-per-minute", type=int, metavar="N")
    limits_reset = commands.add_parser("limits-reset", help="back to the platform's default throttles")
    limits_reset.add_argument("namespace")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    env = dict(os.environ)
    if args.data_dir is not None:
        env["STOCKADE_DATA_DIR"] = str(args.data_dir)
    if args.store is not None:
        env["STOCKADE_STORE__URL"] = args.store
    return load_settings(args.config, env)


def operator() -> str:
    """Who runs the command, as the audit log names them."""
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator"


def _audit(services: Services, chain: str, action: str, resource: str, details: dict[str, object]) -> None:
    """One entry per operator change, in the chain of the namespace it touched ("" = platform)."""
    services.audit.record(AuditEvent(chain, operator(), action, resource, "ok", "host", dict(details)))


async def _run(args: argparse.Namespace, settings: Settings) -> str:
    store = default_store(settings)
    await store.open()
    services: Services | None = None
    try:
        services = build_services(settings, store, _NoRunner(), SystemClock())
        await services.vault.verify()
        if args.command == "rotate-master-key":
            report = await services.rotation.rotate_master_key(settings.master_key_path)
            retired = ", ".join(report.retired) or "none yet (rerun to finish)"
            _audit(
                services,
                "",
                "admin.rotate_master_key",
                "master-key",
                {"newKeyId": report.new_key_id, "rewrapped": report.rewritten, "retired": list(report.retired)},
            )
            return f"ok: master key {report.new_key_id}; rewrapped {report.rewritten} data keys; retired {retired}"
        if args.command in ("limits-set", "limits-reset"):
            return await _limits_command(args, services)
        if args.command != "rotate-data-key":
            return await _access_command(args, services)
        if await store.get_namespace(args.namespace) is None:
            raise PlatformError(f"namespace {args.namespace!r} does not exist")
        report = await services.rotation.rotate_data_key(args.namespace)
        retired = ", ".join(report.retired) or "none"
        _audit(
            services,
            args.namespace,
            "admin.rotate_data_key",
            f"{args.namespace}/data-key",
            {"newKeyId": report.new_key_id, "reencrypted": report.rewritten, "retired": list(report.retired)},
        )
        return f"ok: data key {report.new_key_id}; re-encrypted {report.rewritten} values; retired {retired}"
    finally:
        if services is not None:
            await services.audit.close()
        await store.close()


async def _limits_command(args: argparse.Namespace, services: Services) -> str:
    """Per-namespace throttles; every API process picks the change up within one epoch poll."""
    if args.command == "limits-reset":
        removed = await services.limits.reset(args.namespace)
        _audit(services, args.namespace, "admin.limits_reset", f"{args.namespace}/limits", {"hadOverrides": removed})
        return f"ok: {args.namespace} uses the default throttles" + ("" if removed else " (it had no overrides)")
    if args.invocations_per_minute is None and args.concurrent_invocations is None and args.fires_per_minute is None:
        raise PlatformError(
            "give at least one of --invocations-per-minute, --concurrent-invocations, --fires-per-minute"
        )
    limits = await services.limits.set(
        args.namespace,
        invocations_per_minute=args.invocations_per_minute,
        concurrent_invocations=args.concurrent_invocations,
        fires_per_minute=args.fires_per_minute,
    )

    _audit(
        services,
        args.namespace,
        "admin.limits_set",
        f"{args.namespace}/limits",
        {
            "invocationsPerMinute": limits.invocations_per_minute,
            "concurrentInvocations": limits.concurrent_invocations,
            "firesPerMinute": limits.fires_per_minute,
        },
    )

    def shown(value: int | None) -> str:
        return "default" if value is None else str(value)

    return (
        f"ok: {args.namespace}: invocations per minute {shown(limits.invocations_per_minute)}, "
        f"concurrent invocations {shown(limits.concurrent_invocations)}, "
        f"fires per minute {shown(limits.fires_per_minute)}"
    )


async def _access_command(args: argparse.Namespace, services: Services) -> str:
    """Namespaces, keys and audit chains, done as the platform operator."""
    store, clock = services.store, services.clock
    actor = operator()
    try:
        if args.command == "namespace-create":
            key = await services.namespaces.create(args.namespace, args.owner, actor=actor)
            return f"ok: created namespace {args.namespace}\nAUTH={key.token}"
        if args.command == "key-create":
            if await store.get_namespace(args.namespace) is None:
                raise PlatformError(f"namespace {args.namespace!r} does not exist")
            role = args.role
            if role:
                await store.put_role(RoleBinding(args.namespace, args.subject, role, "admin", clock.now_ms()))
                _audit(
                    services,
                    args.namespace,
                    "admin.role_granted",
                    f"{args.namespace}/roles/{args.subject}",
                    {"subject": args.subject, "role": role},
                )
            else:
                role = await store.get_role(args.namespace, args.subject)
                if role is None:
                    raise PlatformError(f"subject {args.subject!r} has no role in {args.namespace!r}: pass --role")
            key = await services.namespaces.issue_key(
                args.namespace, args.subject, actor=actor, role=role, source="host"
            )
            return f"ok: key {key.uuid} for {args.subject} in {args.namespace}\nAUTH={key.token}"
        if args.command == "key-list":
            rows = [
                f"{k.uuid}  {k.namespace}  {k.subject}  {'revoked' if k.revoked else 'active'}"
                for k in await store.list_keys(args.namespace)
            ]
            return "\n".join(rows) or "(no keys)"
        if args.command == "key-revoke":
            record = await store.get_key(args.uuid)
            if not await store.revoke_key(args.uuid, clock.now_ms()) or record is None:
                raise PlatformError(f"no active key {args.uuid}")
            _audit(
                services,
                record.namespace,
                "admin.key_revoked",
                f"{record.namespace}/keys/{record.uuid}",
                {"uuid": record.uuid, "subject": record.subject},
            )
            return f"ok: revoked {args.uuid}"
        if args.command == "key-rotate":
            old = await store.get_key(args.uuid)
            if old is None or old.revoked is not None:
                raise PlatformError(f"no active key {args.uuid}")
            role = await store.get_role(old.namespace, old.subject)
            key = await services.namespaces.issue_key(
                old.namespace, old.subject, actor=actor, role=role or "", source="host"
            )
            await store.revoke_key(old.uuid, clock.now_ms())
            _audit(
                services,
                old.namespace,
                "admin.key_rotated",
                f"{old.namespace}/keys/{old.uuid}",
                {"revoked": old.uuid, "issued": key.uuid, "subject": old.subject},
            )
            return f"ok: {old.uuid} revoked; new key {key.uuid}\nAUTH={key.token}"
        if args.command == "audit-verify":
            verdict = await services.audit.verify(args.namespace)
            lines = [
                f"chain {args.namespace or '(platform)'}: {verdict.entries} entries; head {verdict.head_seq}:{verdict.head_mac}"
            ]
            lines += [f"problem: {p}" for p in verdict.problems]
            if not verdict.is_intact:
                raise PlatformError("\n".join(lines))
            return "ok: " + lines[0]
        lines = [
            json.dumps(services.audit.record_to_json(r), sort_keys=True)
            async for r in services.audit.iterate(args.namespace)
        ]
        return "\n".join(lines)
    finally:
        await services.audit.close()


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
