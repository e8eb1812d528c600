"""Manifest readers: what an action declares, locks and vendors, as Dependency records.

Python: requirements*.txt (with -r/-c includes, options, markers and hashes), pyproject.toml
([project] and Poetry), poetry.lock, and vendored ``*.dist-info/METADATA`` / ``PKG-INFO``.
Node.js: package.json, package-lock.json / npm-shrinkwrap.json (lockfile v1, v2 and v3), and
vendored ``node_modules/**/package.json``. Anything unreadable is a ``manifest.malformed``
finding; nothing here raises on bad input.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from stockade.security.scanner.bundle import Bundle
from stockade.security.scanner.findings import Dependency, Finding
from stockade.security.scanner.rules import RuleBook
from stockade.security.scanner.versions import SemVer, normalize_package_name

__all__ = ["Manifests", "read_manifests"]

_REQUIREMENTS_RE = re.compile(r"^(.*/)?requirements[^/]*\.(txt|in)$")
_INCLUDE_OPTIONS = {"-r": "r", "--requirement": "r", "-c": "c", "--constraint": "c"}
_INDEX_OPTIONS = frozenset({"-i", "--index-url", "--extra-index-url", "-f", "--find-links"})
_POETRY_EXACT_RE = re.compile(r"^\s*(==|=)?\s*(\d[0-9A-Za-z.!+_-]*)\s*$")
_NPM_URLISH = ("git+", "git:", "http:", "https:", "file:", "link:", "github:", "gitlab:", "bitbucket:", "gist:")
MAX_LOCK_DEPTH = 64
# Naming the public index explicitly is no override.
_PUBLIC_INDEXES = frozenset(
    {
        "https://pypi.org/simple",
        "https://pypi.python.org/simple",
        "https://registry.npmjs.org",
        "https://registry.yarnpkg.com",
    }
)


@dataclass(slots=True)
class Manifests:
    """Dependencies found, findings about manifests, and which files declared dependencies."""

    dependencies: list[Dependency] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    manifest_files: list[str] = field(default_factory=list)


def _dep(
    ecosystem: str, name: str, version: str | None, spec: str, source: str, line: int | None, **kw: Any
) -> Dependency:
    return Dependency(ecosystem, name, normalize_package_name(ecosystem, name), version, spec, source, line, **kw)


class _Reader:
    def __init__(self, bundle: Bundle, rules: RuleBook) -> None:
        self.bundle = bundle
        self.rules = rules
        self.out = Manifests()
        self.constraints: dict[str, str] = {}
        self.hashes: dict[str, list[int]] = {}  # requirements file → [requirements, with --hash]
        self.require_hashes: set[str] = set()
        self.lock_files: list[str] = []

    def malformed(self, path: str, detail: str, line: int | None = None) -> None:
        self.out.findings.append(self.rules.finding("manifest.malformed", f"{path}: {detail}", file=path, line=line))

    # Python.

    def requirements(
        self, path: str, depth: int = 0, seen: frozenset[str] = frozenset(), *, constraint: bool = False
    ) -> None:
        if path in seen:
            self.malformed(path, "requirements include cycle")
            return
        if depth > self.rules.limits.max_manifest_depth:
            self.malformed(path, f"requirements includes nested deeper than {self.rules.limits.max_manifest_depth}")
            return
        source = self.bundle.files.get(path)
        if source is None:
            return
        self.out.manifest_files.append(path)
        for number, line in _logical_lines(source.text()):
            tokens = line.split()
            option = tokens[0].split("=", 1)[0]
            if option in _INCLUDE_OPTIONS:
                target = tokens[0].split("=", 1)[1] if "=" in tokens[0] else (tokens[1] if len(tokens) > 1 else "")
                included = str(PurePosixPath(path).parent / target) if target else ""
                included = included.removeprefix("./")
                if not target or included not in self.bundle.files:
                    self.malformed(path, f"included file {target!r} is not in the action", number)
                    continue
                self.requirements(included, depth + 1, seen | {path}, constraint=_INCLUDE_OPTIONS[option] == "c")
            elif option in _INDEX_OPTIONS:
                url = tokens[0].split("=", 1)[1] if "=" in tokens[0] else (tokens[1] if len(tokens) > 1 else "")
                self.index_override(path, number, f"{option} {_redact(url)}")
                if url.startswith("http://"):
                    self.out.findings.append(
                        self.rules.finding(
                            "dependency.insecure-index",
                            f"{option} {_redact(url)} is plain HTTP",
                            file=path,
                            line=number,
                        )
                    )
            elif option == "--trusted-host":
                self.out.findings.append(
                    self.rules.finding(
                        "dependency.insecure-index",
                        f"{line.strip()} disables TLS checks for a host",
                        file=path,
                        line=number,
                    )
                )
            elif option in ("-e", "--editable"):
                self.out.findings.append(
                    self.rules.finding(
                        "dependency.direct-url", f"editable requirement {line.strip()}", file=path, line=number
                    )
                )
            elif option == "--require-hashes":
                self.require_hashes.add(path)
            elif option.startswith("-"):
                continue  # --pre, --no-binary, ...: nothing to scan
            else:
                counts = self.hashes.setdefault(path, [0, 0])
                counts[0] += 1
                counts[1] += "--hash" in line
                self._requirement(path, number, line, constraint=constraint)

    def index_override(self, path: str, line: int | None, what: str) -> None:
        """A package source other than the public index: dependency confusion."""
        if what.split()[-1].rstrip("/") in _PUBLIC_INDEXES or what.split("=", 1)[-1].rstrip("/") in _PUBLIC_INDEXES:
            return
        self.out.findings.append(
            self.rules.finding(
                "dependency.index-override",
                f"{what}: packages may be resolved from this source instead of (or besides) the public "
                "index, so a same-named package there wins (dependency confusion); pin with hashes or a lock file",
                file=path,
                line=line,
            )
        )

    def npmrc(self, path: str) -> None:
        source = self.bundle.files.get(path)
        if source is None:
            return
        for number, line in enumerate(source.text().splitlines(), start=1):
            key, sep, value = line.partition("=")
            key = key.strip()
            if sep and (key == "registry" or key.endswith(":registry")):
                self.index_override(path, number, f"{key}={_redact(value.strip())}")
            elif sep and key in ("strict-ssl", "ca") and value.strip().lower() in ("false", "null", '""'):
                self.out.findings.append(
                    self.rules.finding(
                        "dependency.insecure-index",
                        f"{key}={value.strip()} disables TLS checks",
                        file=path,
                        line=number,
                    )
                )

    def credits(self) -> None:
        """Lock files and hashes recognised: info findings, so the report credits them."""
        for path, (total, hashed) in sorted(self.hashes.items()):
            if total and hashed == total:
                enforced = " with --require-hashes" if path in self.require_hashes else ""
                self.out.findings.append(
                    self.rules.finding(
                        "dependency.locked",
                        f"{path}: every requirement ({total}) carries a --hash{enforced}; pip verifies what it installs",
                        file=path,
                    )
                )
        for path in self.lock_files:
            count = sum(1 for d in self.out.dependencies if d.source == path and not d.direct)
            self.out.findings.append(
                self.rules.finding(
                    "dependency.locked", f"{path}: lock file pins {count} package(s) to exact versions", file=path
                )
            )

    def _requirement(self, path: str, number: int | None, line: str, *, constraint: bool) -> None:
        text = " ".join(t for t in line.split() if not t.startswith("--"))  # per-line --hash etc.
        if not text:
            return
        if text.startswith((".", "/", "http:", "https:", "git+", "file:")) or "://" in text.split(";")[0].split("@")[0]:
            self.out.findings.append(
                self.rules.finding(
                    "dependency.direct-url", f"{text} bypasses the package index", file=path, line=number
                )
            )
            return
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            self.malformed(path, f"invalid requirement {text!r} ({exc})", number)
            return
        if req.url:
            self.out.findings.append(
                self.rules.finding(
                    "dependency.direct-url",
                    f"{req.name} comes from {req.url}",
                    file=path,
                    line=number,
                    package=req.name,
                )
            )
            return
        version = _pinned_pep440(req)
        if constraint:
            if version is not None:
                self.constraints[normalize_package_name("PyPI", req.name)] = version
            return
        self.out.dependencies.append(_dep("PyPI", req.name, version, str(req.specifier), path, number))

    def pyproject(self, path: str) -> None:
        data = self._toml(path)
        if data is None:
            return
        self.out.manifest_files.append(path)
        project = data.get("project")
        if isinstance(project, Mapping):
            lists = [project.get("dependencies")]
            optional = project.get("optional-dependencies")
            if isinstance(optional, Mapping):
                lists.extend(optional.values())
            for items in lists:
                if items is None:
                    continue
                if not isinstance(items, list):
                    self.malformed(path, "[project] dependencies must be arrays of strings")
                    continue
                for item in items:
                    if isinstance(item, str):
                        self._requirement(path, _line_of(self.bundle, path, item), item, constraint=False)
                    else:
                        self.malformed(path, f"dependency {item!r} is not a string")
        tool = data.get("tool")
        poetry = tool.get("poetry") if isinstance(tool, Mapping) else None
        sources = poetry.get("source") if isinstance(poetry, Mapping) else None
        for entry in sources if isinstance(sources, list) else []:
            if isinstance(entry, Mapping) and isinstance(entry.get("url"), str):
                line = _line_of(self.bundle, path, entry["url"])
                self.index_override(path, line, f"[[tool.poetry.source]] {_redact(entry['url'])}")
        uv = tool.get("uv") if isinstance(tool, Mapping) else None
        if isinstance(uv, Mapping):
            for key in ("index-url", "extra-index-url", "find-links"):
                if uv.get(key):
                    self.index_override(path, _line_of(self.bundle, path, key), f"[tool.uv] {key}")
            if isinstance(uv.get("index"), list) and uv["index"]:
                self.index_override(path, _line_of(self.bundle, path, "[[tool.uv.index]]"), "[[tool.uv.index]]")
        if isinstance(poetry, Mapping):
            for key in ("dependencies",):
                table = poetry.get(key)
                if isinstance(table, Mapping):
                    for name, spec in table.items():
                        if name.lower() != "python":
                            self._poetry(path, str(name), spec)

    def _poetry(self, path: str, name: str, spec: Any) -> None:
        line = _line_of(self.bundle, path, name)
        if isinstance(spec, Mapping):
            if any(k in spec for k in ("git", "path", "url")):
                self.out.findings.append(
                    self.rules.finding(
                        "dependency.direct-url", f"{name} comes from outside the index", file=path, line=line
                    )
                )
                return
            spec = spec.get("version", "*")
        if isinstance(spec, list):
            spec = ",".join(str(s.get("version", "*")) if isinstance(s, Mapping) else str(s) for s in spec)
        if not isinstance(spec, str):
            self.malformed(path, f"version of {name} is not a string", line)
            return
        match = _POETRY_EXACT_RE.match(spec)
        version = match.group(2) if match and "*" not in spec else None
        self.out.dependencies.append(_dep("PyPI", name, version, spec, path, line))

    def poetry_lock(self, path: str) -> None:
        data = self._toml(path)
        if data is None:
            return
        self.out.manifest_files.append(path)
        packages = data.get("package")
        for entry in packages if isinstance(packages, list) else []:
            if (
                isinstance(entry, Mapping)
                and isinstance(entry.get("name"), str)
                and isinstance(entry.get("version"), str)
            ):
                self.out.dependencies.append(
                    _dep("PyPI", entry["name"], entry["version"], f"=={entry['version']}", path, None, direct=False)
                )

    def vendored_python(self, path: str) -> None:
        fields = _metadata_fields(self.bundle.files[path].text())
        name, version = fields.get("name"), fields.get("version")
        if not name or not version:
            self.malformed(path, "vendored package metadata without Name or Version")
            return
        self.out.dependencies.append(_dep("PyPI", name, version, "", path, None, vendored=True))

    def _toml(self, path: str) -> dict[str, Any] | None:
        try:
            return tomllib.loads(self.bundle.files[path].text())
        except (tomllib.TOMLDecodeError, RecursionError, ValueError) as exc:
            self.malformed(path, f"not valid TOML ({exc})")
            return None

    # Node.js.

    def _json(self, path: str) -> Mapping[str, Any] | None:
        try:
            data = json.loads(self.bundle.files[path].data)
        except (ValueError, RecursionError) as exc:
            self.malformed(path, f"not valid JSON ({exc})")
            return None
        if not isinstance(data, Mapping):
            self.malformed(path, "not a JSON object")
            return None
        return data

    def package_json(self, path: str) -> None:
        data = self._json(path)
        if data is None:
            return
        self.out.manifest_files.append(path)
        for key in ("dependencies", "optionalDependencies"):
            table = data.get(key)
            if table is None:
                continue
            if not isinstance(table, Mapping):
                self.malformed(path, f"'{key}' must be an object")
                continue
            for name, spec in table.items():
                line = _line_of(self.bundle, path, f'"{name}"')
                if not isinstance(spec, str):
                    self.malformed(path, f"version of {name} must be a string", line)
                    continue
                self._npm_declared(path, line, str(name), spec.strip())

    def _npm_declared(self, path: str, line: int | None, name: str, spec: str) -> None:
        if spec.startswith("npm:"):  # alias: "x": "npm:real-name@1.2.3"
            target, _, spec = spec[4:].rpartition("@")
            name = target or name
        if spec.startswith(_NPM_URLISH) or re.match(r"^[\w.-]+/[\w.-]+(#.*)?$", spec):
            self.out.findings.append(
                self.rules.finding(
                    "dependency.direct-url", f"{name} comes from {spec}", file=path, line=line, package=name
                )
            )
            return
        version: str | None = None
        try:
            SemVer.parse(spec)
            version = spec.lstrip("=v").strip()
        except ValueError:
            pass  # a range (^1.2, ~1, >=1 <2, *, latest): not pinned
        self.out.dependencies.append(_dep("npm", name, version, spec, path, line))

    def package_lock(self, path: str) -> None:
        data = self._json(path)
        if data is None:
            return
        self.out.manifest_files.append(path)
        packages = data.get("packages")
        if isinstance(packages, Mapping):  # lockfile v2 and v3
            for key, entry in packages.items():
                if not key or not isinstance(entry, Mapping) or entry.get("dev") or entry.get("link"):
                    continue
                name = entry.get("name") if isinstance(entry.get("name"), str) else key.rpartition("node_modules/")[2]
                self._npm_locked(path, str(name), entry.get("version"))
            return
        deps = data.get("dependencies")  # lockfile v1
        if deps is not None and not isinstance(deps, Mapping):
            self.malformed(path, "'dependencies' must be an object")
            return
        for name, version in _walk_v1(deps or {}, 0):
            self._npm_locked(path, name, version)

    def _npm_locked(self, path: str, name: str, version: Any) -> None:
        if not name or not isinstance(version, str):
            return
        try:
            SemVer.parse(version)
        except ValueError:
            return  # URLs, file: and git references carry no release version
        self.out.dependencies.append(_dep("npm", name, version, version, path, None, direct=False))

    def vendored_node(self, path: str) -> None:
        parts = PurePosixPath(path).parts
        index = max(i for i, p in enumerate(parts) if p == "node_modules")
        tail = parts[index + 1 : -1]
        if not (len(tail) == 1 or (len(tail) == 2 and tail[0].startswith("@"))):
            return  # a package.json inside a package (tests, examples), not a package root
        data = self._json(path)
        if data is None:
            return
        name = data.get("name") if isinstance(data.get("name"), str) else "/".join(tail)
        version = data.get("version")
        if isinstance(version, str):
            self.out.dependencies.append(_dep("npm", str(name), version, "", path, None, vendored=True))


def _redact(url: str) -> str:
    """A URL without its user:password (index URLs often carry tokens)."""
    return re.sub(r"(://)[^/@\s]*@", r"\1***@", url)


def _walk_v1(deps: Mapping[str, Any], depth: int) -> Iterator[tuple[str, Any]]:
    if depth > MAX_LOCK_DEPTH:
        return
    for name, entry in deps.items():
        if isinstance(entry, Mapping) and not entry.get("dev"):
            yield str(name), entry.get("version")
            nested = entry.get("dependencies")
            if isinstance(nested, Mapping):
                yield from _walk_v1(nested, depth + 1)


def _pinned_pep440(req: Requirement) -> str | None:
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, content) with continuations joined and comments removed."""
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        if buffer.strip():
            yield start, buffer.strip()
        buffer = ""
    if buffer.strip():
        yield start, buffer.strip()


def _metadata_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # headers end at the first blank line; the description follows
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("name", "version"):
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def _line_of(bundle: Bundle, path: str, needle: str) -> int | None:
    for number, line in enumerate(bundle.files[path].text().splitlines(), start=1):
        if needle in line:
            return number
    return None


def read_manifests(bundle: Bundle, rules: RuleBook) -> Manifests:
    """Every dependency the bundle declares, locks or vendors, with findings about the manifests."""
    reader = _Reader(bundle, rules)
    included: set[str] = set()
    for path, source in sorted(bundle.files.items()):
        base = PurePosixPath(path).name
        parent = PurePosixPath(path).parent.name
        if source.vendored:
            if base in ("METADATA", "PKG-INFO") and parent.endswith((".dist-info", ".egg-info")):
                reader.vendored_python(path)
            elif base == "package.json" and "node_modules" in PurePosixPath(path).parts:
                reader.vendored_node(path)
            continue
        if _REQUIREMENTS_RE.match(path) and path not in included:
            before = set(reader.out.manifest_files)
            reader.requirements(path)
            included |= set(reader.out.manifest_files) - before
        elif base == "pyproject.toml":
            reader.pyproject(path)
        elif base == "poetry.lock":
            reader.poetry_lock(path)
            reader.lock_files.append(path)
        elif base == "package.json":
            reader.package_json(path)
        elif base in ("package-lock.json", "npm-shrinkwrap.json"):
            reader.package_lock(path)
            reader.lock_files.append(path)
        elif base == ".npmrc":
            reader.npmrc(path)
    reader.credits()
    result = reader.out
    result.dependencies = _apply_pins(result.dependencies, reader.constraints)
    return result


def _apply_pins(deps: list[Dependency], constraints: Mapping[str, str]) -> list[Dependency]:
    """Unpinned declarations take the version a constraint, lock or vendored copy fixes."""
    exact: dict[tuple[str, str], str] = {}
    for dep in deps:
        if dep.version is not None and (dep.vendored or not dep.direct):
            exact.setdefault((dep.ecosystem, dep.normalized), dep.version)
    out: list[Dependency] = []
    for dep in deps:
        if dep.version is None:
            pinned = exact.get((dep.ecosystem, dep.normalized))
            if pinned is None and dep.ecosystem == "PyPI":
                pinned = constraints.get(dep.normalized)
            if pinned is not None:
                dep = Dependency(
                    dep.ecosystem, dep.name, dep.normalized, pinned, dep.specifier, dep.source, dep.line,
                    dep.vendored, dep.direct,
                )  # fmt: skip
        out.append(dep)
    return out
