"""Hard-coded secrets, with detect-secrets as a library: in code lines and in plain parameters.

detect-secrets keeps its plugin and filter settings in a module-level singleton; we configure
it once from ``rules/secrets.json`` and scan one file at a time under a lock. Nothing is
verified against a network service. Findings never repeat the secret: they name the detector,
the file and line (or the parameter) and point to the secrets store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from stockade.security.scanner.bundle import SourceFile
from stockade.security.scanner.findings import Finding
from stockade.security.scanner.rules import RuleBook, SecretsConfig
from stockade.security.scanner.tokens import find_in_text, is_placeholder, load_token_rules, scan_source

__all__ = ["SECRET_STORE_HINT", "scan_code_secrets", "scan_parameter_secrets"]

SECRET_STORE_HINT = "use `stockade secret set` and reference it with --secret"  # noqa: S105 - advice text, not a secret
# Invariant: detect-secrets' global settings are changed and used under this lock only.
_LOCK = threading.Lock()
_configured: list[SecretsConfig] = []


def _configure(config: SecretsConfig) -> None:
    """Point detect-secrets' global settings at our plugins and filters (once per config)."""
    if _configured and _configured[0] is config:
        return
    from detect_secrets.settings import configure_settings_from_baseline

    configure_settings_from_baseline(
        {
            "plugins_used": [{"name": name} for name in config.plugin_rules],
            # configure_filters replaces the defaults, dropping the allowlist filter: a
            # "pragma: allowlist secret" comment in scanned code must not hide a secret.
            "filters_used": [{"path": path} for path in config.filters],
        }
    )
    _configured[:] = [config]


def _plugin_name(secret: Any) -> str:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    plugin: type[Any] | None = get_mapping_from_secret_type_to_class().get(secret.type)
    return plugin.__name__ if plugin is not None else str(secret.type)


def _scan_lines(lines: list[tuple[int, str]], filename: str, config: SecretsConfig) -> list[tuple[int, str, str]]:
    """(line, plugin class name, secret type) for each secret found."""
    from detect_secrets.core.scan import _process_line_based_plugins

    with _LOCK:
        _configure(config)
        return [
            (s.line_number, _plugin_name(s), str(s.type))
            for s in _process_line_based_plugins(lines, filename)
            if not is_placeholder(str(s.secret_value or ""))
        ]


_TOKEN_TITLES = {"literal": "", "joined": " (joined from pieces)", "base64": " (base64-encoded)"}


def scan_code_secrets(files: Iterable[SourceFile], rules: RuleBook) -> list[Finding]:
    """Secrets in the text files of a bundle: known token formats anywhere (``tokens.py``), then
    detect-secrets (long lines, e.g. minified code, are skipped by it). A line suppressed inline
    with a reason yields one ``secret.suppressed`` (info) finding instead."""
    config = rules.secrets
    max_line = rules.limits.max_line_bytes
    token_rules = load_token_rules()
    findings: list[Finding] = []
    for source in files:
        if source.path.endswith(("package-lock.json", "npm-shrinkwrap.json", "poetry.lock", "RECORD")):
            continue  # integrity hashes, not secrets
        text = source.text()
        hits, suppressed = scan_source(source.path, text, token_rules)
        per_line: dict[int, list[Finding]] = {}
        seen: set[tuple[int, str]] = set()
        for hit in hits:
            per_line.setdefault(hit.line, []).append(
                rules.finding(
                    "secret.hardcoded",
                    f"{hit.format_id}{_TOKEN_TITLES[hit.how]} in {source.path}; keep secrets out of code: "
                    f"{SECRET_STORE_HINT}",
                    file=source.path,
                    line=hit.line,
                    source=f"tokens:{hit.format_id}",
                )
            )
            seen.add((hit.line, "secret.hardcoded"))
            seen.add((hit.line, "secret.high-entropy"))  # the same string, already reported precisely
        lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if len(line) <= max_line]
        for line, plugin, secret_type in _scan_lines(lines, source.path, config):
            rule_id = config.plugin_rules.get(plugin, ("secret.hardcoded", True))[0]
            if (line, rule_id) in seen:
                continue
            seen.add((line, rule_id))
            per_line.setdefault(line, []).append(
                rules.finding(
                    rule_id,
                    f"{secret_type} in {source.path}; keep secrets out of code: {SECRET_STORE_HINT}",
                    file=source.path,
                    line=line,
                    source=f"detect-secrets:{plugin}",
                )
            )
        for line in sorted(per_line):
            reason = suppressed.get(line)
            if reason is None:
                findings.extend(per_line[line])
                continue
            what = ", ".join(sorted({f.source or f.rule_id for f in per_line[line]}))
            findings.append(
                rules.finding(
                    "secret.suppressed",
                    f"secret finding(s) ({what}) suppressed inline: {reason[:200]}",
                    file=source.path,
                    line=line,
                    source="allow-secret",
                )
            )
    return findings


def _is_placeholder(value: str) -> bool:
    text = value.strip()
    return text.startswith(("${", "{{", "<", "$")) or text.lower() in ("changeme", "change-me", "xxxxxxxx", "redacted")


def scan_parameter_secrets(parameters: Mapping[str, Any], rules: RuleBook) -> list[Finding]:
    """Credentials passed as plain-text default parameters (by name, and by known key formats)."""
    config = rules.secrets
    findings: list[Finding] = []
    flagged: set[str] = set()
    for key, value in parameters.items():
        if not isinstance(value, str):
            continue
        if (
            config.parameter_key.search(key)
            and len(value) >= config.parameter_min_length
            and not _is_placeholder(value)
        ):
            flagged.add(key)
            findings.append(
                rules.finding(
                    "secret.plain-parameter",
                    f"parameter {key!r} looks like a credential passed in plain text; {SECRET_STORE_HINT}",
                    file="parameters",
                    source="name",
                )
            )
    token_rules = load_token_rules()
    for key, value in parameters.items():
        if not isinstance(value, str) or key in flagged:
            continue
        for fmt, how in find_in_text(value, token_rules):
            flagged.add(key)
            findings.append(
                rules.finding(
                    "secret.plain-parameter",
                    f"parameter {key!r} holds a {fmt.id}{_TOKEN_TITLES[how]} in plain text; {SECRET_STORE_HINT}",
                    file="parameters",
                    source=f"tokens:{fmt.id}",
                )
            )
            break
    checked = {k: v for k, v in parameters.items() if isinstance(v, str) and k not in flagged}
    if not checked:
        return findings
    keys = list(checked)
    # One pseudo-file line per parameter, in JSON shape so value-format detectors see a string.
    lines = [
        (i + 1, f'"value": "{checked[k]}"')
        for i, k in enumerate(keys)
        if len(checked[k]) <= rules.limits.max_line_bytes
    ]
    for line, plugin, secret_type in _scan_lines(lines, "parameters.json", config):
        _, in_parameters = config.plugin_rules.get(plugin, ("secret.hardcoded", False))
        key = keys[line - 1]
        if not in_parameters or key in flagged:
            continue
        flagged.add(key)
        findings.append(
            rules.finding(
                "secret.plain-parameter",
                f"parameter {key!r} holds a {secret_type} in plain text; {SECRET_STORE_HINT}",
                file="parameters",
                source=f"detect-secrets:{plugin}",
            )
        )
    return findings
