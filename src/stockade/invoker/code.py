"""Action code on disk: materialise an Exec into a read-only directory keyed by its digest.

Plain Python code becomes ``__main__.py``, plain Node.js code ``index.js``; base64 zips are
extracted safely (no absolute paths, ``..``, links or special files; capped size and file count).
Each directory is built under a temporary name and renamed into place, files 0444, dirs 0555.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import os
import secrets
import shutil
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final, final

from stockade.domain import Exec
from stockade.errors import BadRequestError

__all__ = ["CodeError", "CodeStore", "MaterializedCode", "extract_zip", "remove_tree", "tree_digest"]

PLAIN_ENTRY: Final = {"python": "__main__.py", "nodejs": "index.js"}
DEFAULT_MAX_UNPACKED_BYTES: Final = 256 * 1024 * 1024
DEFAULT_MAX_FILES: Final = 20_000
# Hash big code off the event loop; small code is cheaper to hash in place than to hand over.
_THREAD_THRESHOLD_BYTES = 256 * 1024
_COPY_BYTES = 1024 * 1024
_U64 = struct.Struct(">Q")


class CodeError(BadRequestError):
    """The action's code cannot be materialised (bad base64, unsafe or oversized zip)."""

    code = "bad_code"


@final
@dataclass(frozen=True, slots=True)
class MaterializedCode:
    """A read-only code directory and the tree digest of what was written."""

    path: Path
    digest: str


def _walk(root: bytes, rel: bytes, out: list[tuple[bytes, bytes]]) -> None:
    with os.scandir(os.path.join(root, rel) if rel else root) as it:
        for entry in it:
            path = rel + b"/" + entry.name if rel else entry.name
            if entry.is_symlink():
                out.append((path, b"l"))
            elif entry.is_dir(follow_symlinks=False):
                out.append((path, b"d"))
                _walk(root, path, out)
            elif entry.is_file(follow_symlinks=False):
                out.append((path, b"f"))
            else:
                out.append((path, b"o"))


def tree_digest(root: Path) -> str:
    """SHA-256 over every entry under ``root``; the runners compute the same bytes.

    Entries in byte order of their relative path: ``kind + path + NUL``, then for files and
    links a u64 big-endian length and the content (link target). Kinds: d, f, l, o(ther).
    """
    root_b = os.fsencode(root)
    entries: list[tuple[bytes, bytes]] = []
    _walk(root_b, b"", entries)
    entries.sort()
    digest = hashlib.sha256()
    for rel, kind in entries:
        digest.update(kind + rel + b"\0")
        full = os.path.join(root_b, rel)
        if kind == b"f":
            with open(full, "rb") as f:
                data = f.read()
            digest.update(_U64.pack(len(data)) + data)
        elif kind == b"l":
            target = os.readlink(full)
            digest.update(_U64.pack(len(target)) + target)
    return digest.hexdigest()


def _safe_parts(name: str) -> list[str]:
    """The path components of a zip member name, or CodeError if it could leave the target."""
    if not name or "\0" in name or "\\" in name or name.startswith("/"):
        raise CodeError(f"The zip file has an unsafe entry name: {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise CodeError(f"The zip file has an unsafe entry name: {name!r}")
    return parts


def extract_zip(data: bytes, target: Path, *, max_unpacked_bytes: int, max_files: int) -> None:
    """Extract ``data`` into the existing empty directory ``target``; raises CodeError if unsafe."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise CodeError(f"The action code is not a valid zip file: {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > max_files:
            raise CodeError(f"The zip file has {len(infos)} entries; at most {max_files} are allowed.")
        declared = sum(info.file_size for info in infos)
        if declared > max_unpacked_bytes:
            raise CodeError(
                f"The zip file unpacks to {declared} bytes; at most {max_unpacked_bytes} bytes are allowed."
            )
        budget = max_unpacked_bytes
        seen: set[tuple[str, ...]] = set()
        for info in infos:
            parts = _safe_parts(info.filename)
            if tuple(parts) in seen:
                raise CodeError(f"The zip file has a duplicate entry: {info.filename!r}")
            seen.add(tuple(parts))
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise CodeError(f"The zip file has a link or special file: {info.filename!r}")
            dest = target.joinpath(*parts)
            try:
                if info.is_dir() or kind == stat.S_IFDIR:
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                budget = _copy_member(archive, info, dest, budget, max_unpacked_bytes)
            except (OSError, RuntimeError, NotImplementedError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                raise CodeError(f"The zip file entry {info.filename!r} cannot be extracted: {exc}") from None


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: int, limit: int) -> int:
    # O_EXCL|O_NOFOLLOW: never overwrite, never write through a link (we create none, but be sure).
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out, archive.open(info) as src:
        while chunk := src.read(_COPY_BYTES):
            budget -= len(chunk)
            if budget < 0:
                # Declared sizes are checked up front; this guards a lying archive.
                raise CodeError(f"The zip file unpacks to more than {limit} bytes.")
            out.write(chunk)
    return budget


def _seal(root: Path) -> None:
    """Files 0444, directories 0555, bottom-up so directories are sealed last."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o555)  # noqa: S103 - read-only code, world-readable by design
    os.chmod(root, 0o555)  # noqa: S103 - read-only code, world-readable by design


def remove_tree(path: Path) -> None:
    """Delete a sealed (read-only) tree."""
    if not path.exists() and not path.is_symlink():
        return
    for dirpath, _dirnames, _filenames in os.walk(path):
        os.chmod(dirpath, 0o700)
    shutil.rmtree(path)


@final
class CodeStore:
    """Materialised code directories under ``root``, one per (runtime family, code digest)."""

    def __init__(
        self,
        root: Path,
        *,
        max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
        max_files: int = DEFAULT_MAX_FILES,
    ) -> None:
        self.root = root
        self.max_unpacked_bytes = max_unpacked_bytes
        self.max_files = max_files
        self._known: dict[str, MaterializedCode] = {}
        self._building: dict[str, asyncio.Task[MaterializedCode]] = {}

    async def materialize(self, exec_: Exec) -> MaterializedCode:
        """The code directory for ``exec_``, built on first use; raises CodeError."""
        family = exec_.family
        if family is None:
            raise CodeError(f"The action kind {exec_.kind!r} has no code to run.")
        if len(exec_.code) > _THREAD_THRESHOLD_BYTES:
            code_digest = await asyncio.to_thread(lambda: exec_.code_digest)
        else:
            code_digest = exec_.code_digest
        key = f"{family}-{code_digest}"
        known = self._known.get(key)
        if known is not None and known.path.is_dir():
            return known
        task = self._building.get(key)
        if task is None:
            task = asyncio.ensure_future(self._build(exec_, family, key))
            self._building[key] = task
            task.add_done_callback(lambda _: self._building.pop(key, None))
        # Shielded: one caller giving up must not cancel the build others wait for.
        return await asyncio.shield(task)

    async def _build(self, exec_: Exec, family: str, key: str) -> MaterializedCode:
        if len(exec_.code) > _THREAD_THRESHOLD_BYTES or exec_.binary:
            built = await asyncio.to_thread(self.materialize_sync, exec_, family, key)
        else:
            built = self.materialize_sync(exec_, family, key)
        self._known[key] = built
        return built

    def materialize_sync(self, exec_: Exec, family: str, key: str) -> MaterializedCode:
        """Build ``root/key`` from ``exec_`` atomically, replacing whatever was there."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{secrets.token_hex(8)}"
        tmp.mkdir(mode=0o700)
        try:
            if exec_.binary:
                try:
                    data = base64.b64decode(exec_.code.strip(), validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise CodeError(f"The action code is not valid base64: {exc}") from None
                extract_zip(data, tmp, max_unpacked_bytes=self.max_unpacked_bytes, max_files=self.max_files)
            else:
                try:
                    source = exec_.code.encode()
                except UnicodeEncodeError as exc:
                    raise CodeError(f"The action code is not valid UTF-8 text: {exc}") from None
                (tmp / PLAIN_ENTRY[family]).write_bytes(source)
            _seal(tmp)
            digest = tree_digest(tmp)
            final_path = self.root / key
            # A directory left by an earlier process is not trusted: it is replaced.
            if final_path.exists() or final_path.is_symlink():
                self._retire(final_path)
            os.rename(tmp, final_path)
        except BaseException:
            remove_tree(tmp)
            raise
        return MaterializedCode(final_path, digest)

    def _retire(self, path: Path) -> None:
        aside = self.root / f".old-{secrets.token_hex(8)}"
        os.rename(path, aside)
        remove_tree(aside)

    def discard(self, code: MaterializedCode) -> None:
        """Forget and delete a directory found modified, so the next start rebuilds it."""
        for key, known in list(self._known.items()):
            if known.path == code.path:
                del self._known[key]
        if code.path.exists():
            self._retire(code.path)

    def statistics(self) -> dict[str, int]:
        """Directories known to this process and builds in flight."""
        return {"known": len(self._known), "building": len(self._building)}
