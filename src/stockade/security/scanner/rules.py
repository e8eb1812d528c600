"""Scanner policy as data: the rule catalogue, analyser mappings and limits, validated on load.

The JSON files under ``rules/`` are the policy (house style rule 13); this module only checks
them against a schema and cross-references (every mapping names a known rule), then exposes
them as frozen records. A bad file fails loudly at load time, never half-way through a scan.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, final

import jsonschema

from stockade.security.scanner.findings import Finding, Severity
from stockade.security.scanner.versions import normalize_package_name

__all__ = [
    "BanditMapping",
    "JsConfig",
    "Limits",
    "PolicyConfig",
    "Rule",
    "RuleBook",
    "RulesError",
    "SecretsConfig",
    "default_rulebook",
    "load_rulebook",
]

_SEVERITY = {"enum": [s.value for s in Severity]}
_REASON = {"type": "string", "minLength": 10}
_STR_LIST = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}

_SCHEMAS: dict[str, dict[str, Any]] = {
    "rules.json": {
        "type": "object",
        "required": ["rules"],
        "properties": {
            "rules": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["id", "family", "severity", "title", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "string", "pattern": r"^[a-z]+\.[a-z0-9-]+$"},
                        "family": {"enum": ["dependency", "manifest", "bundle", "code", "secret", "policy"]},
                        "severity": _SEVERITY,
                        "title": {"type": "string", "minLength": 3},
                        "reason": _REASON,
                    },
                },
            }
        },
    },
    "bandit.json": {
        "type": "object",
        "required": ["tests", "fallback", "severity_map"],
        "properties": {
            "tests": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["test_id", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "test_id": {"type": "string", "pattern": r"^B\d{3}$"},
                        "rule": {"type": "string"},
                        "low_rule": {"type": "string"},
                        "ignore": {"const": True},
                        "reason": _REASON,
                    },
                    "oneOf": [{"required": ["rule"]}, {"required": ["ignore"]}],
                },
            },
            "fallback": {
                "type": "object",
                "required": ["rule", "reason"],
                "properties": {"rule": {"type": "string"}, "reason": _REASON},
            },
            "severity_map": {
                "type": "object",
                "required": ["HIGH", "MEDIUM", "LOW", "UNDEFINED"],
                "additionalProperties": _SEVERITY,
            },
        },
    },
    "javascript.json": {
        "type": "object",
        "required": ["eslint", "calls", "selectors"],
        "properties": {
            "eslint": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["eslint_rule", "rule", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "eslint_rule": {"type": "string"},
                        "rule": {"type": "string"},
                        "severity": _SEVERITY,
                        "message_pattern": {"type": "string"},
                        "reason": _REASON,
                    },
                },
            },
            "calls": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["rule", "modules", "functions", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "rule": {"type": "string"},
                        "modules": _STR_LIST,
                        "functions": _STR_LIST,
                        "shell_option": {"type": "boolean"},
                        "reason": _REASON,
                    },
                },
            },
            "selectors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["rule", "selector", "reason"],
                    "additionalProperties": False,
                    "properties": {"rule": {"type": "string"}, "selector": {"type": "string"}, "reason": _REASON},
                },
            },
        },
    },
    "secrets.json": {
        "type": "object",
        "required": ["plugins", "filters", "parameter_keys"],
        "properties": {
            "plugins": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["plugin", "rule", "in_parameters", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "plugin": {"type": "string"},
                        "rule": {"type": "string"},
                        "in_parameters": {"type": "boolean"},
                        "reason": _REASON,
                    },
                },
            },
            "filters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path", "reason"],
                    "additionalProperties": False,
                    "properties": {"path": {"type": "string"}, "reason": _REASON},
                },
            },
            "parameter_keys": {
                "type": "object",
                "required": ["pattern", "min_length", "reason"],
                "properties": {
                    "pattern": {"type": "string"},
                    "min_length": {"type": "integer", "minimum": 1},
                    "reason": _REASON,
                },
            },
        },
    },
    "policy.json": {
        "type": "object",
        "required": [
            "api_key_markers",
            "grant_annotations",
            "egress_annotations",
            "unrestricted_values",
            "import_names",
        ],
        "properties": {
            key: {
                "type": "object",
                "required": ["values", "reason"],
                "additionalProperties": False,
                "properties": {"values": _STR_LIST, "reason": _REASON},
            }
            for key in ("api_key_markers", "grant_annotations", "egress_annotations", "unrestricted_values")
        }
        | {
            "import_names": {
                "type": "object",
                "required": ["values", "reason"],
                "additionalProperties": False,
                "properties": {"values": {"type": "object", "additionalProperties": _STR_LIST}, "reason": _REASON},
            }
        },
    },
    "limits.json": {
        "type": "object",
        "required": ["limits"],
        "properties": {
            "limits": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["value", "reason"],
                    "additionalProperties": False,
                    "properties": {"value": {"type": "integer", "minimum": 1}, "reason": _REASON},
                },
            }
        },
    },
}


class RulesError(ValueError):
    """A rules file is missing, not JSON, or does not match its schema."""


@final
@dataclass(frozen=True, slots=True)
class Rule:
    """One finding rule: its id, default severity, family, title and the reason it exists."""

    id: str
    family: str
    severity: Severity
    title: str
    reason: str


@final
@dataclass(frozen=True, slots=True)
class BanditMapping:
    """Bandit test id → rule (or ignored), and how bandit severities translate for the fallback."""

    tests: Mapping[str, tuple[str | None, str | None]]  # test id → (rule or None if ignored, low_rule)
    fallback_rule: str
    severity_map: Mapping[str, Severity]


@final
@dataclass(frozen=True, slots=True)
class JsConfig:
    """What the JavaScript analyser runs; sent to the worker as is."""

    eslint: tuple[Mapping[str, Any], ...]
    calls: tuple[Mapping[str, Any], ...]
    selectors: tuple[Mapping[str, Any], ...]


@final
@dataclass(frozen=True, slots=True)
class SecretsConfig:
    """detect-secrets plugins and filters, and the credential-looking parameter names."""

    plugin_rules: Mapping[str, tuple[str, bool]]  # plugin class name → (rule, in_parameters)
    filters: tuple[str, ...]
    parameter_key: re.Pattern[str]
    parameter_min_length: int


@final
@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Inputs of the policy lint (see policy.json)."""

    api_key_markers: tuple[str, ...]
    grant_annotations: tuple[str, ...]
    egress_annotations: tuple[str, ...]
    unrestricted_values: frozenset[str]
    import_names: Mapping[str, tuple[str, ...]]  # normalised PyPI name → import names


@final
@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of one scan (see limits.json for the reason of each)."""

    max_archive_bytes: int
    max_entries: int
    max_unpacked_bytes: int
    max_ratio: int
    ratio_min_bytes: int
    max_file_bytes: int
    max_read_bytes: int
    max_analysed_files: int
    max_manifest_depth: int
    max_line_bytes: int
    max_bundle_bytes: int
    js_timeout_ms: int
    js_max_old_space_mb: int


@final
@dataclass(frozen=True, slots=True)
class RuleBook:
    """Every piece of scanner policy, loaded and checked."""

    rules: Mapping[str, Rule]
    bandit: BanditMapping
    javascript: JsConfig
    secrets: SecretsConfig
    policy: PolicyConfig
    limits: Limits

    def finding(self, rule_id: str, message: str, *, severity: Severity | None = None, **where: Any) -> Finding:
        """A finding of ``rule_id`` with the rule's severity unless ``severity`` overrides it."""
        rule = self.rules[rule_id]  # KeyError here is a programming error: ids are checked on load
        return Finding(rule_id, severity or rule.severity, message, **where)


def _read(folder: Path | Any, name: str) -> Any:
    try:
        data = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RulesError(f"cannot read scanner rules {name}: {exc}") from None
    try:
        jsonschema.validate(data, _SCHEMAS[name])
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise RulesError(f"scanner rules {name} are invalid at {where}: {exc.message}") from None
    return data


def _check_refs(known: Mapping[str, Rule], refs: list[tuple[str, str]]) -> None:
    for file, rule_id in refs:
        if rule_id not in known:
            raise RulesError(f"scanner rules {file} refer to unknown rule {rule_id!r}")


def load_rulebook(folder: Path | None = None) -> RuleBook:
    """Load and validate the rule files in ``folder`` (default: the packaged ``rules/``)."""
    base: Any = folder if folder is not None else resources.files("stockade.security.scanner") / "rules"
    raw_rules = _read(base, "rules.json")
    rules: dict[str, Rule] = {}
    for entry in raw_rules["rules"]:
        if entry["id"] in rules:
            raise RulesError(f"scanner rules rules.json define {entry['id']!r} twice")
        rules[entry["id"]] = Rule(
            entry["id"], entry["family"], Severity(entry["severity"]), entry["title"], entry["reason"]
        )

    bandit = _read(base, "bandit.json")
    js = _read(base, "javascript.json")
    secrets = _read(base, "secrets.json")
    policy = _read(base, "policy.json")
    limits = _read(base, "limits.json")["limits"]

    refs: list[tuple[str, str]] = [("bandit.json", bandit["fallback"]["rule"])]
    refs += [("bandit.json", t[k]) for t in bandit["tests"] for k in ("rule", "low_rule") if k in t]
    refs += [("javascript.json", e["rule"]) for key in ("eslint", "calls", "selectors") for e in js[key]]
    refs += [("secrets.json", p["rule"]) for p in secrets["plugins"]]
    _check_refs(rules, refs)

    try:
        parameter_key = re.compile(secrets["parameter_keys"]["pattern"])
        for entry in js["eslint"]:
            if "message_pattern" in entry:
                re.compile(entry["message_pattern"])
    except re.error as exc:
        raise RulesError(f"scanner rules contain an invalid regular expression: {exc}") from None

    expected = {f.name for f in Limits.__dataclass_fields__.values()}
    if set(limits) != expected:
        missing, extra = sorted(expected - set(limits)), sorted(set(limits) - expected)
        raise RulesError(f"scanner rules limits.json: missing {missing}, unknown {extra}")

    return RuleBook(
        rules=rules,
        bandit=BanditMapping(
            tests={t["test_id"]: (t.get("rule"), t.get("low_rule")) for t in bandit["tests"]},
            fallback_rule=bandit["fallback"]["rule"],
            severity_map={k: Severity(v) for k, v in bandit["severity_map"].items()},
        ),
        javascript=JsConfig(tuple(js["eslint"]), tuple(js["calls"]), tuple(js["selectors"])),
        secrets=SecretsConfig(
            plugin_rules={p["plugin"]: (p["rule"], p["in_parameters"]) for p in secrets["plugins"]},
            filters=tuple(f["path"] for f in secrets["filters"]),
            parameter_key=parameter_key,
            parameter_min_length=secrets["parameter_keys"]["min_length"],
        ),
        policy=PolicyConfig(
            api_key_markers=tuple(policy["api_key_markers"]["values"]),
            grant_annotations=tuple(policy["grant_annotations"]["values"]),
            egress_annotations=tuple(policy["egress_annotations"]["values"]),
            unrestricted_values=frozenset(v.lower() for v in policy["unrestricted_values"]["values"]),
            import_names={
                normalize_package_name("PyPI", k): tuple(v) for k, v in policy["import_names"]["values"].items()
            },
        ),
        limits=Limits(**{name: int(entry["value"]) for name, entry in limits.items()}),
    )


@functools.cache
def default_rulebook() -> RuleBook:
    """The packaged rules, loaded once per process."""
    return load_rulebook()
