"""Reading many small files from a directory, a .zip or a .tar(.gz) without extracting anything.

Used for advisory dumps. Members are read in memory with a size cap; links, special files,
absolute names and ``..`` are skipped; nothing is ever written to disk.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ArchiveError", "iter_archive_members"]

MAX_MEMBERS = 200_000


class ArchiveError(ValueError):
    """A file or archive member cannot be read."""


def _unsafe(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith("/") or "\0" in name or ".." in parts


def _from_directory(root: Path, suffixes: tuple[str, ...], cap: int) -> Iterator[tuple[str, bytes | ArchiveError]]:
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            if not filename.endswith(suffixes):
                continue
            count += 1
            if count > MAX_MEMBERS:
                raise ArchiveError(f"{root}: more than {MAX_MEMBERS} files")
            path = Path(dirpath) / filename
            name = str(path.relative_to(root))
            try:
                info = path.lstat()
                if not stat.S_ISREG(info.st_mode):
                    yield name, ArchiveError(f"{name}: not a regular file (links are not followed)")
                elif info.st_size > cap:
                    yield name, ArchiveError(f"{name}: larger than {cap} bytes")
                else:
                    yield name, path.read_bytes()
            except OSError as exc:
                yield name, ArchiveError(f"{name}: {exc.strerror or exc}")


def _from_zip(path: Path, suffixes: tuple[str, ...], cap: int) -> Iterator[tuple[str, bytes | ArchiveError]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"{path}: not a readable zip file ({exc})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ArchiveError(f"{path}: more than {MAX_MEMBERS} entries")
        for info in infos:
            name = info.filename
            if info.is_dir() or not name.endswith(suffixes):
                continue
            kind = stat.S_IFMT(info.external_attr >> 16)
            if _unsafe(name) or kind not in (0, stat.S_IFREG):
                yield name, ArchiveError(f"{name}: unsafe entry skipped")
            elif info.file_size > cap:
                yield name, ArchiveError(f"{name}: larger than {cap} bytes")
            else:
                try:
                    yield name, archive.read(info)
                except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, zlib.error) as exc:
                    yield name, ArchiveError(f"{name}: cannot be read ({exc})")


def _from_tar(path: Path, suffixes: tuple[str, ...], cap: int) -> Iterator[tuple[str, bytes | ArchiveError]]:
    try:
        archive = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{path}: not a readable tar archive ({exc})") from None
    count = 0
    with archive:
        try:
            for member in archive:
                count += 1
                if count > MAX_MEMBERS:
                    raise ArchiveError(f"{path}: more than {MAX_MEMBERS} entries")
                name = member.name
                if member.isdir() or not name.endswith(suffixes):
                    continue
                if _unsafe(name) or not member.isreg():
                    yield name, ArchiveError(f"{name}: unsafe entry skipped")
                elif member.size > cap:
                    yield name, ArchiveError(f"{name}: larger than {cap} bytes")
                else:
                    handle = archive.extractfile(member)  # a reader over the archive, no file written
                    yield name, handle.read(cap + 1) if handle is not None else ArchiveError(f"{name}: unreadable")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise ArchiveError(f"{path}: the archive is corrupt ({exc})") from None


def iter_archive_members(
    path: Path, *, suffixes: tuple[str, ...], max_member_bytes: int
) -> Iterator[tuple[str, bytes | ArchiveError]]:
    """(name, bytes or the reason it was skipped) for each file with one of ``suffixes``.

    ``path`` is a directory, a single file, a .zip, or a .tar/.tar.gz/.tgz. Raises ArchiveError
    when ``path`` itself cannot be read.
    """
    if path.is_dir():
        yield from _from_directory(path, suffixes, max_member_bytes)
    elif zipfile.is_zipfile(path):
        yield from _from_zip(path, suffixes, max_member_bytes)
    elif path.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        yield from _from_tar(path, suffixes, max_member_bytes)
    elif path.is_file() and path.name.endswith(suffixes):
        try:
            size = path.stat().st_size
            if size > max_member_bytes:
                raise ArchiveError(f"{path}: larger than {max_member_bytes} bytes")
            yield path.name, path.read_bytes()
        except OSError as exc:
            raise ArchiveError(f"{path}: {exc.strerror or exc}") from None
    else:
        raise ArchiveError(f"{path}: not a directory, an OSV file, a .zip or a .tar.gz")
