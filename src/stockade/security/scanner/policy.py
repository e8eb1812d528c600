"""Policy lint: what the action's annotations, size and dependencies say about its exposure.

Checks: web actions without ``require-whisk-auth``; ``provide-api-key`` on code that never uses
the key; wildcard grants in policy annotations; unrestricted egress; oversized bundles; declared
dependencies the code never imports (minimal granularity). Inputs are plain data; the lists of
annotation names, markers and import aliases come from ``rules/policy.json``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

from stockade.domain import is_truthy
from stockade.security.scanner.bundle import Bundle, SourceFile
from stockade.security.scanner.findings import Dependency, Finding
from stockade.security.scanner.rules import RuleBook

__all__ = ["imported_names", "lint_policy"]

_JS_IMPORT_RE = re.compile(r"""(?:require\s*\(\s*|import\s*\(\s*|\bfrom\s+|\bimport\s+)['"]([^'"\n]+)['"]""")
_PY_IMPORT_RE = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][\w]*)", re.MULTILINE)


def _python_imports(source: SourceFile) -> set[str]:
    text = source.text()
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(_PY_IMPORT_RE.findall(text))  # a best effort for code that does not parse
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".", 1)[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".", 1)[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value.split(".", 1)[0])
    return names


def _js_package(specifier: str) -> str | None:
    if specifier.startswith((".", "/", "node:")):
        return None
    parts = specifier.split("/")
    return "/".join(parts[:2]) if specifier.startswith("@") and len(parts) > 1 else parts[0]


def imported_names(sources: Iterable[SourceFile]) -> tuple[set[str], set[str]]:
    """(Python top-level modules, npm packages) the sources import."""
    python: set[str] = set()
    node: set[str] = set()
    for source in sources:
        if source.path.endswith(".py"):
            python |= _python_imports(source)
        elif source.path.endswith((".js", ".mjs", ".cjs")):
            node |= {p for p in (_js_package(m) for m in _JS_IMPORT_RE.findall(source.text())) if p}
    return python, node


def _python_import_candidates(dep: Dependency, bundle: Bundle, aliases: Mapping[str, tuple[str, ...]]) -> set[str]:
    base = dep.normalized.replace("-", "_")
    candidates = {base, dep.name.replace("-", "_"), base.removeprefix("python_"), base.removeprefix("py")}
    candidates |= set(aliases.get(dep.normalized, ()))
    for path, source in bundle.files.items():
        parent = PurePosixPath(path).parent.name
        if path.endswith("top_level.txt") and parent.lower().replace("_", "-").startswith(dep.normalized + "-"):
            candidates |= {line.strip() for line in source.text().splitlines() if line.strip()}
    return {c.lower() for c in candidates if c}


def _walk_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_strings(item, f"{path}[{index}]")


def _lint_annotations(annotations: Mapping[str, Any], rules: RuleBook, sources: list[SourceFile]) -> list[Finding]:
    policy = rules.policy
    findings: list[Finding] = []
    if is_truthy(annotations.get("web-export")) and not is_truthy(annotations.get("require-whisk-auth")):
        findings.append(
            rules.finding(
                "policy.web-without-auth",
                "web action without require-whisk-auth: anyone who knows the URL can call it "
                "(annotate require-whisk-auth and send X-Require-Whisk-Auth, e.g. from a CDN)",
                file="annotations",
            )
        )
    if (
        is_truthy(annotations.get("provide-api-key"))
        and sources
        and not any(marker in source.text() for source in sources for marker in policy.api_key_markers)
    ):
        findings.append(
            rules.finding(
                "policy.api-key-unneeded",
                "provide-api-key is set but the code never reads __OW_API_KEY or loads an OpenWhisk client; "
                "drop the annotation so namespace credentials stay out of the action",
                file="annotations",
            )
        )
    for key in policy.grant_annotations:
        if key in annotations:
            for where, text in _walk_strings(annotations[key], key):
                if text.strip() == "*" or text.endswith((":*", "/*")):
                    findings.append(
                        rules.finding(
                            "policy.wildcard-grant", f"annotation {where} grants {text!r}", file="annotations"
                        )
                    )
    for key in policy.egress_annotations:
        if key not in annotations:
            continue
        value = annotations[key]
        if value is True:
            findings.append(
                rules.finding("policy.unrestricted-egress", f"annotation {key} allows all egress", file="annotations")
            )
            continue
        for where, text in _walk_strings(value, key):
            if text.strip().lower() in policy.unrestricted_values:
                findings.append(
                    rules.finding(
                        "policy.unrestricted-egress",
                        f"annotation {where} = {text!r} allows egress to any host or port; list what the action needs",
                        file="annotations",
                    )
                )
    return findings


def lint_policy(
    *,
    annotations: Mapping[str, Any],
    bundle: Bundle,
    dependencies: Iterable[Dependency],
    rules: RuleBook,
) -> list[Finding]:
    """Policy findings for one action."""
    sources = bundle.sources()
    code = [s for s in sources if s.path.endswith((".py", ".js", ".mjs", ".cjs"))]
    findings = _lint_annotations(annotations, rules, code)
    limit = rules.limits.max_bundle_bytes
    if bundle.unpacked_bytes > limit:
        findings.append(
            rules.finding(
                "bundle.oversized",
                f"the action unpacks to {bundle.unpacked_bytes} bytes (over {limit}); ship only what it needs",
            )
        )
    if not code:
        return findings
    python_imports, node_imports = imported_names(code)
    python_imports = {name.lower() for name in python_imports}
    reported: set[tuple[str, str]] = set()
    for dep in dependencies:
        if dep.vendored or not dep.direct or (dep.ecosystem, dep.normalized) in reported:
            continue
        if dep.ecosystem == "PyPI":
            has_python = any(s.path.endswith(".py") for s in code)
            used = not has_python or bool(
                _python_import_candidates(dep, bundle, rules.policy.import_names) & python_imports
            )
        else:
            has_js = any(s.path.endswith((".js", ".mjs", ".cjs")) for s in code)
            used = not has_js or dep.name in node_imports
        if not used:
            reported.add((dep.ecosystem, dep.normalized))
            findings.append(
                rules.finding(
                    "dependency.unused",
                    f"{dep.name} is declared but never imported; remove it (minimal granularity)",
                    file=dep.source,
                    line=dep.line,
                    package=dep.name,
                    ecosystem=dep.ecosystem,
                )
            )
    return findings
