"""``stockade advisories import PATH``: send OSV advisories to the platform in batches.

PATH is a directory, a .zip or a .tar(.gz) of OSV JSON or YAML files (e.g. an export of the
PyPA advisory database or of OSV's per-ecosystem dumps). Files are read locally, in memory and
with size caps (nothing is extracted), YAML through the safe loader, and POSTed as JSON to
``/api/v1/admin/advisories``, which stores them and rescans deployed actions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from stockade.cli.client import CliError, Json
from stockade.cli.context import Context, Subparsers, add_command, add_group

__all__ = ["ADVISORIES_PATH", "read_osv_files", "register"]

ADVISORIES_PATH = "admin/advisories"
SYNC_PATH = "admin/advisories/sync"
SUFFIXES = (".json", ".yaml", ".yml")
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_FILES = 500_000
DEFAULT_BATCH = 500
MAX_BATCH_BYTES = 8 * 1024 * 1024
# The safe loader, in C when libyaml is available (an OSV dump has thousands of files).
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _decode(name: str, data: bytes) -> Any:
    if name.endswith((".yaml", ".yml")):
        loader = _SAFE_LOADER(data)
        try:
            return _jsonable(loader.get_single_data())
        finally:
            loader.dispose()
    return json.loads(data)


def _unsafe(name: str) -> bool:
    return name.startswith("/") or "\0" in name or ".." in name.replace("\\", "/").split("/")


def _members(path: Path) -> Iterator[tuple[str, bytes | str]]:
    """(name, bytes or why it was skipped) for each OSV-looking file under ``path``."""
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
            dirnames.sort()
            for filename in sorted(f for f in filenames if f.endswith(SUFFIXES)):
                full = Path(dirpath) / filename
                status = full.lstat()
                if not stat.S_ISREG(status.st_mode):
                    yield str(full), "not a regular file"
                elif status.st_size > MAX_FILE_BYTES:
                    yield str(full), "too large"
                else:
                    yield str(full), full.read_bytes()
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir() or not info.filename.endswith(SUFFIXES):
                    continue
                kind = stat.S_IFMT(info.external_attr >> 16)
                if _unsafe(info.filename) or kind not in (0, stat.S_IFREG) or info.file_size > MAX_FILE_BYTES:
                    yield info.filename, "unsafe or too large"
                    continue
                yield info.filename, archive.read(info)
    elif path.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2")):
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive:
                if not member.name.endswith(SUFFIXES) or member.isdir():
                    continue
                if _unsafe(member.name) or not member.isreg() or member.size > MAX_FILE_BYTES:
                    yield member.name, "unsafe or too large"
                    continue
                handle = archive.extractfile(member)  # a reader, nothing is written
                yield member.name, handle.read() if handle is not None else "unreadable"
    elif path.is_file() and path.name.endswith(SUFFIXES):
        yield str(path), path.read_bytes()
    else:
        raise CliError(f"{path} is not a directory, an OSV file, a .zip or a .tar.gz", exit_code=2)


def read_osv_files(path: Path) -> tuple[list[dict[str, Json]], list[str]]:
    """The OSV documents under ``path`` and a line per file that could not be read."""
    docs: list[dict[str, Json]] = []
    problems: list[str] = []
    try:
        for count, (name, data) in enumerate(_members(path), start=1):
            if count > MAX_FILES:
                raise CliError(f"{path} has more than {MAX_FILES} OSV files", exit_code=2)
            if isinstance(data, str):
                problems.append(f"{name}: {data}")
                continue
            try:
                doc = _decode(name, data)
            except (ValueError, yaml.YAMLError, RecursionError) as exc:
                problems.append(f"{name}: {exc.__class__.__name__}")
                continue
            if isinstance(doc, dict):
                docs.append(doc)
            else:
                problems.append(f"{name}: not an OSV object")
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise CliError(f"cannot read {path}: {exc}", exit_code=2) from None
    return docs, problems


def _batches(docs: list[dict[str, Json]], size: int) -> Iterator[list[dict[str, Json]]]:
    batch: list[dict[str, Json]] = []
    weight = 0
    for doc in docs:
        cost = len(json.dumps(doc, separators=(",", ":")))
        if batch and (len(batch) >= size or weight + cost > MAX_BATCH_BYTES):
            yield batch
            batch, weight = [], 0
        batch.append(doc)
        weight += cost
    if batch:
        yield batch


def _import(ctx: Context, args: argparse.Namespace) -> int:
    """``advisories import PATH``."""
    if args.batch_size < 1:
        raise CliError("--batch-size must be at least 1", exit_code=2)
    docs, problems = read_osv_files(Path(args.path))
    totals = {"created": 0, "updated": 0, "unchanged": 0}
    rejected: list[Json] = []
    vulnerable: list[Json] = []
    for batch in _batches(docs, args.batch_size):
        reply = ctx.client.post(ADVISORIES_PATH, {"advisories": batch})
        data = reply.data if isinstance(reply.data, dict) else {}
        for key in totals:
            totals[key] += int(data.get(key) or 0)
        rejected += data.get("rejected") or []
        vulnerable += data.get("newlyVulnerable") or []
    for problem in problems:
        ctx.out.error(f"warning: skipped {problem}")
    for item in rejected:
        ctx.out.error(
            f"warning: rejected advisory {item.get('id') or '#' + str(item.get('index'))}: {item.get('error')}"
        )
    summary = {**totals, "rejected": len(rejected), "unreadable": len(problems), "newlyVulnerable": vulnerable}
    if ctx.out.json_mode:
        ctx.out.json(summary)
        return 0
    ctx.out.ok(
        f"imported {len(docs)} advisories from {args.path}: {totals['created']} new, {totals['updated']} updated, "
        f"{totals['unchanged']} unchanged, {len(rejected)} rejected, {len(problems)} unreadable files"
    )
    for item in vulnerable:
        ctx.out.line(
            f"now vulnerable: /{item.get('namespace')}/{item.get('action')}@{item.get('version')} "
            f"({', '.join(item.get('advisories') or [])})"
        )
    return 0


def _describe_status(ctx: Context, ecosystems: Any) -> None:
    for name, info in sorted((ecosystems or {}).items()):
        last = info.get("lastUpdate")
        when = dt.datetime.fromtimestamp(last / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if last else "never"
        state = str(info.get("state"))
        flag = "" if state == "current" else f"  <- {state.upper()}: run `stockade advisories sync`"
        ctx.out.line(f"{name}: {info.get('advisories', 0)} advisories, last updated {when}{flag}")


def _sync(ctx: Context, args: argparse.Namespace) -> int:
    """``advisories sync``: the platform downloads, verifies and imports OSV's exports."""
    # One request per ecosystem keeps each within the client's read timeout.
    ecosystems = list(args.ecosystem)
    if not ecosystems:
        status = ctx.client.get(SYNC_PATH).data
        configured = status.get("ecosystems") if isinstance(status, dict) else None
        ecosystems = sorted(configured) if isinstance(configured, dict) else ["PyPI", "npm"]
    synced: list[Json] = []
    data: dict[str, Any] = {}
    for ecosystem in ecosystems:
        reply = ctx.client.post(SYNC_PATH, {"ecosystems": [ecosystem]})
        data = reply.data if isinstance(reply.data, dict) else {}
        synced += data.get("synced") or []
    if ctx.out.json_mode:
        ctx.out.json({"synced": synced, "ecosystems": data.get("ecosystems")})
        return 0
    for item in synced:
        if not isinstance(item, dict):
            continue
        if item.get("status") == "not-modified":
            ctx.out.ok(f"{item.get('ecosystem')}: unchanged since the last sync ({item.get('advisories')} advisories)")
            continue
        ctx.out.ok(
            f"{item.get('ecosystem')}: {item.get('advisories')} advisories: {item.get('created')} new, "
            f"{item.get('updated')} updated, {item.get('unchanged')} unchanged, {item.get('rejected')} rejected; "
            f"{item.get('newlyVulnerable')} deployed action version(s) newly vulnerable"
        )
    _describe_status(ctx, data.get("ecosystems"))
    return 0


def _status(ctx: Context, args: argparse.Namespace) -> int:
    """``advisories status``: advisories per ecosystem and how old they are."""
    reply = ctx.client.get(SYNC_PATH)
    data = reply.data if isinstance(reply.data, dict) else {}
    if ctx.out.json_mode:
        ctx.out.json(data)
        return 0
    _describe_status(ctx, data.get("ecosystems"))
    return 0


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add the ``advisories`` command group."""
    verbs = add_group(groups, "advisories", "manage the vulnerability advisories the deploy gate uses")
    imp = add_command(verbs, "import", _import, "import OSV advisories (directory, .zip or .tar.gz of JSON/YAML)")
    imp.add_argument("path", metavar="PATH", help="directory, .zip or .tar.gz of OSV files")
    sync = add_command(
        verbs,
        "sync",
        _sync,
        "the platform downloads OSV's exports (scan.advisories_url), verifies and imports them, rescans actions",
    )
    sync.add_argument(
        "--ecosystem", action="append", default=[], choices=["PyPI", "npm"], help="only this ecosystem; repeatable"
    )
    add_command(verbs, "status", _status, "advisories per ecosystem, last sync, missing or stale data")
    imp.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH,
        metavar="N",
        help=f"advisories per request (default {DEFAULT_BATCH})",
    )
