"""An action's files, read in memory within the scan limits; never extracted, never executed.

Plain code becomes one file (``__main__.py`` or ``index.js``, as the invoker names it). A zip
action is read member by member from memory: names that could escape the action directory,
links, encrypted entries and decompression bombs become findings and are not read; files over
the per-file or per-scan budget are reported as not analysed. Vendored packages (``*.dist-info``
with their RECORD, ``node_modules/``, ``site-packages/``) are marked so that only their metadata
is read.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import final

from stockade.security.scanner.findings import Finding
from stockade.security.scanner.rules import RuleBook

__all__ = ["PLAIN_ENTRY", "Bundle", "SourceFile", "bundle_from_code", "bundle_from_path", "bundle_from_zip"]

PLAIN_ENTRY = {"python": "__main__.py", "nodejs": "index.js"}
SOURCE_SUFFIXES = (".py", ".js", ".mjs", ".cjs")
# Files read for manifests, metadata and secrets besides source code.
TEXT_SUFFIXES = (".json", ".toml", ".txt", ".cfg", ".ini", ".env", ".yaml", ".yml", ".lock", ".pem", ".key", ".sh")
METADATA_NAMES = frozenset({"METADATA", "PKG-INFO", "RECORD", "top_level.txt", "package.json"})
TEXT_NAMES = frozenset({".env", ".npmrc", "Pipfile", ".pypirc", "credentials"})
VENDOR_SEGMENTS = frozenset({"node_modules", "site-packages", "dist-packages"})


@final
@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file read from the bundle."""

    path: str
    data: bytes
    vendored: bool = False

    @property
    def is_binary(self) -> bool:
        """True when the file looks binary (a NUL byte early on)."""
        return b"\0" in self.data[:8192]

    def text(self) -> str:
        """The content as text (undecodable bytes replaced)."""
        return self.data.decode("utf-8", errors="replace")


@final
@dataclass(slots=True)
class Bundle:
    """What the scan reads: files by path, every entry name, sizes, and findings so far."""

    files: dict[str, SourceFile] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    unpacked_bytes: int = 0
    packed_bytes: int = 0
    findings: list[Finding] = field(default_factory=list)
    read_bytes: int = 0

    def sources(self) -> list[SourceFile]:
        """Non-vendored text files, in path order."""
        return [f for _, f in sorted(self.files.items()) if not f.vendored and not f.is_binary]


def _unsafe_name(name: str) -> str | None:
    """Why ``name`` could leave the action directory, or None."""
    if not name:
        return "empty name"
    if "\0" in name:
        return "NUL in name"
    if "\\" in name:
        return "backslash in name"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' segment"
    return None


def _is_wanted(path: str) -> bool:
    base = PurePosixPath(path).name
    return (
        base.endswith(SOURCE_SUFFIXES + TEXT_SUFFIXES)
        or base in METADATA_NAMES
        or base in TEXT_NAMES
        or base.startswith(".env")  # .env.production, .env.local: environment-style files
    )


def _vendored_roots(names: list[str], read: dict[str, bytes]) -> set[str]:
    """Path prefixes owned by vendored distributions (from each *.dist-info RECORD / top_level.txt)."""
    roots: set[str] = set()
    for name, data in read.items():
        path = PurePosixPath(name)
        if path.parent.name.endswith((".dist-info", ".egg-info")) and path.name in ("RECORD", "top_level.txt"):
            parent = path.parent.parent
            roots.add(str(path.parent) + "/")
            for line in data.decode("utf-8", errors="replace").splitlines():
                first = line.split(",", 1)[0].strip().split("/", 1)[0]
                if first and first not in ("..", ".") and not first.endswith((".dist-info", ".egg-info")):
                    suffix = "/" if path.name == "top_level.txt" or "/" in line.split(",", 1)[0] else ""
                    roots.add(str(parent / first) + suffix if str(parent) != "." else first + suffix)
    for name in names:
        parts = PurePosixPath(name).parts
        if any(p.endswith((".dist-info", ".egg-info")) for p in parts[:-1]):
            index = next(i for i, p in enumerate(parts) if p.endswith((".dist-info", ".egg-info")))
            roots.add("/".join(parts[: index + 1]) + "/")
    return roots


def _is_vendored(path: str, roots: set[str]) -> bool:
    if VENDOR_SEGMENTS.intersection(PurePosixPath(path).parts[:-1]):
        return True
    return any(path == root or (root.endswith("/") and path.startswith(root)) for root in roots)


class _Reader:
    """Reads wanted members within the per-file and per-scan budgets, recording findings."""

    def __init__(self, bundle: Bundle, rules: RuleBook) -> None:
        self.bundle = bundle
        self.rules = rules
        self.limits = rules.limits
        self.budget_reported = False

    def admit(self, path: str, size: int, *, vendored: bool) -> bool:
        """Whether a member of ``size`` bytes may be read now (reports why not)."""
        if size > self.limits.max_file_bytes:
            if not vendored and PurePosixPath(path).name.endswith(SOURCE_SUFFIXES):
                self.bundle.findings.append(
                    self.rules.finding(
                        "bundle.file-too-large",
                        f"{path} is {size} bytes, over the {self.limits.max_file_bytes}-byte analysis limit; "
                        "it was not analysed",
                        file=path,
                    )
                )
            return False
        if self.bundle.read_bytes + size > self.limits.max_read_bytes:
            if not self.budget_reported:
                self.budget_reported = True
                self.bundle.findings.append(
                    self.rules.finding(
                        "bundle.scan-budget",
                        f"the scan stopped reading after {self.bundle.read_bytes} bytes "
                        f"(limit {self.limits.max_read_bytes}); later files were not analysed",
                        file=path,
                    )
                )
            return False
        return True

    def keep(self, path: str, data: bytes, *, vendored: bool) -> None:
        self.bundle.read_bytes += len(data)
        self.bundle.files[path] = SourceFile(path, data, vendored)


def bundle_from_code(code: str, *, binary: bool, family: str | None, rules: RuleBook) -> Bundle:
    """The bundle of an action's ``exec.code``: one plain file, or a base64 zip."""
    if not binary:
        name = PLAIN_ENTRY.get(family or "", "action.txt")
        data = code.encode("utf-8", errors="replace")
        bundle = Bundle(names=[name], unpacked_bytes=len(data), packed_bytes=len(data))
        reader = _Reader(bundle, rules)
        if reader.admit(name, len(data), vendored=False):
            reader.keep(name, data, vendored=False)
        return bundle
    try:
        raw = base64.b64decode(code.strip(), validate=True)
    except (binascii.Error, ValueError):
        bundle = Bundle()
        bundle.findings.append(rules.finding("bundle.unreadable", "the action code is not valid base64"))
        return bundle
    return bundle_from_zip(raw, rules)


def bundle_from_zip(raw: bytes, rules: RuleBook, *, label: str = "the action archive") -> Bundle:
    """Read a zip archive from memory."""
    limits = rules.limits
    bundle = Bundle(packed_bytes=len(raw))
    if len(raw) > limits.max_archive_bytes:
        bundle.findings.append(
            rules.finding("bundle.zip-bomb", f"{label} is {len(raw)} bytes, over {limits.max_archive_bytes}")
        )
        return bundle
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        bundle.findings.append(rules.finding("bundle.unreadable", f"{label} is not a readable zip file ({exc})"))
        return bundle
    with archive:
        if len(infos) > limits.max_entries:
            bundle.findings.append(
                rules.finding(
                    "bundle.too-many-entries", f"{label} has {len(infos)} entries; at most {limits.max_entries}"
                )
            )
            return bundle
        declared = sum(i.file_size for i in infos)
        compressed = max(1, sum(i.compress_size for i in infos))
        bundle.unpacked_bytes = declared
        if declared > limits.max_unpacked_bytes or (
            declared >= limits.ratio_min_bytes and declared / compressed > limits.max_ratio
        ):
            bundle.findings.append(
                rules.finding(
                    "bundle.zip-bomb",
                    f"{label} declares {declared} bytes unpacked from {compressed} "
                    f"(ratio {declared / compressed:.0f}:1); limits: {limits.max_unpacked_bytes} bytes, "
                    f"{limits.max_ratio}:1 above {limits.ratio_min_bytes} bytes; nothing was read",
                )
            )
            return bundle
        safe: list[zipfile.ZipInfo] = []
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            reason = _unsafe_name(name)
            if reason is not None:
                shown = name.replace("\0", "\\0")
                bundle.findings.append(
                    rules.finding("bundle.path-traversal", f"entry {shown!r} is unsafe ({reason})", file=shown)
                )
                continue
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                what = "a symbolic link" if kind == stat.S_IFLNK else "a special file"
                bundle.findings.append(rules.finding("bundle.link", f"entry {name!r} is {what}", file=name))
                continue
            normalized = "/".join(p for p in name.split("/") if p not in ("", "."))
            if info.is_dir() or kind == stat.S_IFDIR:
                continue
            if normalized in seen:
                bundle.findings.append(
                    rules.finding("bundle.duplicate-entry", f"entry {name!r} appears more than once", file=name)
                )
                continue
            seen.add(normalized)
            if info.flag_bits & 0x1:
                bundle.findings.append(
                    rules.finding("bundle.encrypted-entry", f"entry {name!r} is encrypted", file=name)
                )
                continue
            bundle.names.append(normalized)
            if _is_wanted(normalized):
                safe.append(info)
        _read_members(archive, safe, bundle, rules)
    return bundle


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, bundle: Bundle, rules: RuleBook) -> bytes | None:
    try:
        # The declared size was checked; ZipExtFile stops at it and checks the CRC, so a lying
        # header yields an error here rather than more data.
        with archive.open(info) as member:
            return member.read(info.file_size + 1)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, zlib.error, ValueError) as exc:
        bundle.findings.append(
            rules.finding("bundle.unreadable", f"entry {info.filename!r} cannot be read ({exc})", file=info.filename)
        )
        return None


def _read_members(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], bundle: Bundle, rules: RuleBook) -> None:
    reader = _Reader(bundle, rules)
    # Metadata first (small, decides what is vendored), then everything else in name order.
    metadata = [i for i in infos if PurePosixPath(i.filename).name in ("RECORD", "top_level.txt")]
    meta_read: dict[str, bytes] = {}
    for info in metadata:
        if reader.admit(info.filename, info.file_size, vendored=True):
            data = _read_member(archive, info, bundle, rules)
            if data is not None:
                meta_read[_norm(info.filename)] = data
    roots = _vendored_roots(bundle.names, meta_read)
    for name, data in meta_read.items():
        reader.keep(name, data, vendored=True)
    for info in sorted(infos, key=lambda i: i.filename):
        name = _norm(info.filename)
        if name in bundle.files:
            continue
        vendored = _is_vendored(name, roots)
        base = PurePosixPath(name).name
        if vendored and base not in METADATA_NAMES:
            continue  # vendored code is not analysed; its metadata says what it is
        if reader.admit(name, info.file_size, vendored=vendored):
            data = _read_member(archive, info, bundle, rules)
            if data is not None:
                reader.keep(name, data, vendored=vendored)


def _norm(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def bundle_from_path(path: Path, rules: RuleBook) -> Bundle:
    """A local action for ``stockade scan PATH``: a directory, a .zip, or one source file."""
    if path.is_dir():
        return _bundle_from_directory(path, rules)
    try:
        size = path.stat().st_size
        if size > rules.limits.max_archive_bytes:
            bundle = Bundle(packed_bytes=size)
            bundle.findings.append(
                rules.finding("bundle.zip-bomb", f"{path.name} is {size} bytes, over {rules.limits.max_archive_bytes}")
            )
            return bundle
        data = path.read_bytes()
    except OSError as exc:
        bundle = Bundle()
        bundle.findings.append(rules.finding("bundle.unreadable", f"cannot read {path}: {exc.strerror or exc}"))
        return bundle
    if path.suffix.lower() in (".zip", ".jar") or data[:4] == b"PK\x03\x04":
        return bundle_from_zip(data, rules, label=path.name)
    bundle = Bundle(names=[path.name], unpacked_bytes=len(data), packed_bytes=len(data))
    reader = _Reader(bundle, rules)
    if reader.admit(path.name, len(data), vendored=False):
        reader.keep(path.name, data, vendored=False)
    return bundle


def _bundle_from_directory(root: Path, rules: RuleBook) -> Bundle:
    limits = rules.limits
    bundle = Bundle()
    candidates: list[tuple[str, Path, int]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", "__pycache__"))
        base = Path(dirpath)
        for entry in sorted([*dirnames, *filenames]):
            full = base / entry
            rel = full.relative_to(root).as_posix()
            try:
                info = full.lstat()
            except OSError:
                continue
            if stat.S_ISLNK(info.st_mode):
                bundle.findings.append(rules.finding("bundle.link", f"{rel} is a symbolic link", file=rel))
                if entry in dirnames:
                    dirnames.remove(entry)
                continue
            if entry in dirnames:
                continue
            if not stat.S_ISREG(info.st_mode):
                bundle.findings.append(rules.finding("bundle.link", f"{rel} is a special file", file=rel))
                continue
            bundle.names.append(rel)
            bundle.unpacked_bytes += info.st_size
            if len(bundle.names) > limits.max_entries:
                bundle.findings.append(
                    rules.finding("bundle.too-many-entries", f"{root} has more than {limits.max_entries} files")
                )
                return bundle
            if _is_wanted(rel):
                candidates.append((rel, full, info.st_size))
    bundle.packed_bytes = bundle.unpacked_bytes
    reader = _Reader(bundle, rules)
    meta: dict[str, bytes] = {}
    for rel, full, size in candidates:
        if PurePosixPath(rel).name in ("RECORD", "top_level.txt") and reader.admit(rel, size, vendored=True):
            data = _read_file(full, size, bundle, rules, rel)
            if data is not None:
                meta[rel] = data
    roots = _vendored_roots(bundle.names, meta)
    for rel, data in meta.items():
        reader.keep(rel, data, vendored=True)
    for rel, full, size in candidates:
        if rel in bundle.files:
            continue
        vendored = _is_vendored(rel, roots)
        if vendored and PurePosixPath(rel).name not in METADATA_NAMES:
            continue
        if reader.admit(rel, size, vendored=vendored):
            data = _read_file(full, size, bundle, rules, rel)
            if data is not None:
                reader.keep(rel, data, vendored=vendored)
    return bundle


def _read_file(full: Path, size: int, bundle: Bundle, rules: RuleBook, rel: str) -> bytes | None:
    try:
        # O_NOFOLLOW: a file swapped for a link after the walk is not followed.
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            return handle.read(size + 1)
    except OSError as exc:
        bundle.findings.append(rules.finding("bundle.unreadable", f"cannot read {rel}: {exc.strerror}", file=rel))
        return None
