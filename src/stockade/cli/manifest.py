"""wskdeploy manifests: parsing one into REST requests (``deploy``/``undeploy``) and writing one (``export``).

The format is wskdeploy's: ``project`` (``name``, ``packages``) or top-level ``packages``; per package
``version``, ``public``, ``inputs``, ``annotations``, ``actions``, ``sequences``, ``triggers``,
``rules``, ``apis``; the package ``default`` stands for the namespace itself. Only
``yaml.safe_load`` ever reads a manifest.

Sealed parameter values are written as their fingerprint with ``encryption`` and a transfer token
(``sealed``: a ciphertext only the platform can open, only into the same namespace), never the
value; deployed back, the platform keeps the stored value (the fingerprint matches one held in
the namespace) or opens the token, without revealing it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, final

import yaml

from stockade.cli.client import CliError, Json

__all__ = [
    "DEFAULT_PACKAGE",
    "MANAGED_ANNOTATION",
    "Manifest",
    "Step",
    "input_entries",
    "load_manifest",
    "parse_manifest",
]

DEFAULT_PACKAGE: Final = "default"
# wskdeploy's annotation on every entity of a managed project.
MANAGED_ANNOTATION: Final = "whisk-managed"
_KIND_BY_SUFFIX: Final = {".py": "python:3", ".js": "nodejs:default"}
_BINARY_SUFFIXES: Final = frozenset({".zip", ".jar"})
_TYPED_INPUT_KEYS: Final = frozenset({"type", "value", "default", "description", "required", "encryption", "sealed"})
_LIMIT_NAMES: Final = {
    "timeout": "timeout",
    "memorySize": "memory",
    "logSize": "logs",
    "concurrentActivations": "concurrency",
}

Collection = Literal["packages", "actions", "triggers", "rules", "apis"]


@final
@dataclass(frozen=True, slots=True)
class Step:
    """One entity to write (deploy) or delete (undeploy)."""

    collection: Collection
    name: str  # "x", "pkg/x"; for apis "basepath relpath verb"
    body: dict[str, Json] = field(default_factory=dict)
    is_code: bool = False  # an action that passes the deploy gate


@final
@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed manifest: the project name and its steps in deploy order."""

    project: str
    steps: tuple[Step, ...]


def _fail(message: str) -> CliError:
    return CliError(f"manifest: {message}", exit_code=2)


def load_manifest(path: Path) -> Any:
    """The YAML document at ``path`` (safe loader only)."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", exit_code=2) from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _fail(f"{path} is not valid YAML: {exc}") from exc


def _mapping(raw: Any, what: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise _fail(f"{what} must be a mapping")
    return raw


def input_entries(raw: Any, what: str) -> list[Json]:
    """``inputs`` as OpenWhisk parameters; typed inputs give ``value`` (else ``default``).

    An input carrying ``encryption`` is a fingerprint written by ``export``: it is sent back as
    such, so the platform keeps the stored value.
    """
    out: list[Json] = []
    for key, value in _mapping(raw, what).items():
        if (
            isinstance(value, dict)
            and value
            and set(value) <= _TYPED_INPUT_KEYS
            and ("value" in value or "type" in value or "default" in value)
        ):
            if value.get("encryption"):
                entry: dict[str, Json] = {"key": key, "value": value.get("value"), "encryption": value["encryption"]}
                if value.get("sealed"):
                    entry["sealed"] = value["sealed"]
                out.append(entry)
                continue
            value = value.get("value", value.get("default"))
        out.append({"key": key, "value": value})
    return out


def _annotations(raw: Any, what: str, managed: Json) -> list[Json]:
    items = [{"key": k, "value": v} for k, v in _mapping(raw, what).items() if k != MANAGED_ANNOTATION]
    return [*items, {"key": MANAGED_ANNOTATION, "value": managed}]


def _web(value: Any) -> dict[str, Json]:
    text = str(value).lower()
    if text in ("true", "yes"):
        return {"web-export": True, "raw-http": False, "final": True}
    if text == "raw":
        return {"web-export": True, "raw-http": True, "final": True}
    if text in ("false", "no"):
        return {"web-export": False}
    raise _fail(f"web-export must be true, false or raw, not {value!r}")


def _exec(spec: Mapping[str, Any], base: Path, what: str) -> dict[str, Json]:
    kind = spec.get("runtime") or spec.get("kind")
    if spec.get("code") is not None:
        if not isinstance(spec["code"], str) or not kind:
            raise _fail(f"{what}: inline 'code' needs a string and a 'runtime'")
        exec_: dict[str, Json] = {"kind": str(kind), "code": spec["code"]}
    else:
        function = spec.get("function") or spec.get("location")
        if not isinstance(function, str) or not function:
            raise _fail(f"{what}: 'function' (the code file) is required")
        path = (base / function).resolve()
        suffix = path.suffix.lower()
        try:
            if suffix in _BINARY_SUFFIXES:
                if not kind:
                    raise _fail(f"{what}: a {suffix} function needs a 'runtime'")
                code = base64.b64encode(path.read_bytes()).decode("ascii")
            else:
                kind = kind or _KIND_BY_SUFFIX.get(suffix)
                if not kind:
                    raise _fail(f"{what}: cannot infer the runtime of {function}; set 'runtime'")
                code = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise _fail(f"{what}: cannot read {function}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise _fail(f"{what}: {function} is not UTF-8 text") from exc
        exec_ = {"kind": str(kind), "code": code}
    if spec.get("main"):
        exec_["main"] = str(spec["main"])
    return exec_


def _limits(raw: Any, what: str) -> dict[str, Json]:
    limits: dict[str, Json] = {}
    for key, value in _mapping(raw, f"{what} limits").items():
        name = _LIMIT_NAMES.get(key, key if key in _LIMIT_NAMES.values() else "")
        if not name:
            raise _fail(f"{what}: unknown limit {key!r} (timeout, memorySize, logSize, concurrentActivations)")
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(f"{what}: limit {key!r} must be an integer")
        limits[name] = value
    return limits


def _qualify(name: str, package: str, namespace: str) -> str:
    """An action reference as a fully qualified name; plain names live in ``package``."""
    name = name.strip()
    if name.startswith("/"):
        return name
    if "/" in name or package == DEFAULT_PACKAGE:
        return f"/{namespace}/{name}"
    return f"/{namespace}/{package}/{name}"


def _key(package: str, name: str) -> str:
    return name if package == DEFAULT_PACKAGE else f"{package}/{name}"


def parse_manifest(doc: Any, base: Path, namespace: str, *, file: str = "") -> Manifest:
    """The steps a manifest asks for, in deploy order (packages, actions, sequences, triggers,
    rules, apis); ``namespace`` qualifies relative action names."""
    root = _mapping(doc, "the manifest")
    project_doc = _mapping(root.get("project"), "project")
    name = project_doc.get("name") or root.get("name") or ""
    if not isinstance(name, str):
        raise _fail("project name must be a string")
    packages = _mapping(project_doc.get("packages") or root.get("packages"), "packages")
    if not packages:
        raise _fail("no packages (expected project.packages or packages)")
    managed: Json = {"projectName": name, "file": file, "deployer": "stockade"}
    steps: dict[str, list[Step]] = {k: [] for k in ("packages", "actions", "sequences", "triggers", "rules", "apis")}
    for package, raw_spec in packages.items():
        spec = _mapping(raw_spec, f"package {package}")
        where = f"package {package}"
        if package != DEFAULT_PACKAGE:
            body: dict[str, Json] = {
                "publish": bool(spec.get("public", spec.get("publish", False))),
                "parameters": input_entries(spec.get("inputs"), f"{where} inputs"),
                "annotations": _annotations(spec.get("annotations"), f"{where} annotations", managed),
            }
            steps["packages"].append(Step("packages", package, body))
        for action, raw_action in _mapping(spec.get("actions"), f"{where} actions").items():
            what = f"action {_key(package, action)}"
            action_spec = _mapping(raw_action, what)
            annotations = dict(_mapping(action_spec.get("annotations"), f"{what} annotations"))
            web = action_spec.get("web-export", action_spec.get("web"))
            if web is not None:
                annotations.update(_web(web))
            body = {
                "exec": _exec(action_spec, base, what),
                "parameters": input_entries(action_spec.get("inputs"), f"{what} inputs"),
                "annotations": _annotations(annotations, what, managed),
            }
            limits = _limits(action_spec.get("limits"), what)
            if limits:
                body["limits"] = limits
            steps["actions"].append(Step("actions", _key(package, action), body, is_code=True))
        for sequence, raw_sequence in _mapping(spec.get("sequences"), f"{where} sequences").items():
            what = f"sequence {_key(package, sequence)}"
            sequence_spec = _mapping(raw_sequence, what)
            components = sequence_spec.get("actions")
            names = components.split(",") if isinstance(components, str) else components
            if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
                raise _fail(f"{what}: 'actions' must list the components (\"a, b, c\")")
            annotations = dict(_mapping(sequence_spec.get("annotations"), f"{what} annotations"))
            web = sequence_spec.get("web-export", sequence_spec.get("web"))
            if web is not None:
                annotations.update(_web(web))
            body = {
                "exec": {"kind": "sequence", "components": [_qualify(n, package, namespace) for n in names]},
                "annotations": _annotations(annotations, what, managed),
            }
            steps["sequences"].append(Step("actions", _key(package, sequence), body))
        for trigger, raw_trigger in _mapping(spec.get("triggers"), f"{where} triggers").items():
            what = f"trigger {trigger}"
            trigger_spec = _mapping(raw_trigger, what)
            if trigger_spec.get("feed"):
                raise _fail(f"{what}: feeds are not supported by Stockade")
            body = {
                "parameters": input_entries(trigger_spec.get("inputs"), f"{what} inputs"),
                "annotations": _annotations(trigger_spec.get("annotations"), what, managed),
            }
            steps["triggers"].append(Step("triggers", trigger, body))
        for rule, raw_rule in _mapping(spec.get("rules"), f"{where} rules").items():
            what = f"rule {rule}"
            rule_spec = _mapping(raw_rule, what)
            trigger_name, action_name = rule_spec.get("trigger"), rule_spec.get("action")
            if not isinstance(trigger_name, str) or not isinstance(action_name, str):
                raise _fail(f"{what}: 'trigger' and 'action' are required")
            trigger_ref = trigger_name if trigger_name.startswith("/") else f"/{namespace}/{trigger_name}"
            body = {
                "trigger": trigger_ref,
                "action": _qualify(action_name, package, namespace),
                "annotations": _annotations(rule_spec.get("annotations"), what, managed),
            }
            steps["rules"].append(Step("rules", rule, body))
        steps["apis"].extend(_apis(spec.get("apis"), package, namespace, where))
    ordered = [*steps["packages"], *steps["actions"], *steps["sequences"], *steps["triggers"], *steps["rules"]]
    return Manifest(name, (*ordered, *steps["apis"]))


def _apis(raw: Any, package: str, namespace: str, where: str) -> list[Step]:
    """``apis: {API_NAME: {BASE: {REL: {ACTION: {method, response}}}}}`` as gateway routes."""
    out: list[Step] = []
    for api_name, bases in _mapping(raw, f"{where} apis").items():
        for base_path, rels in _mapping(bases, f"api {api_name}").items():
            for rel_path, actions in _mapping(rels, f"api {api_name} {base_path}").items():
                for action, raw_op in _mapping(actions, f"api {api_name} {base_path} {rel_path}").items():
                    op = _mapping(raw_op, f"api {api_name} route {rel_path}") if isinstance(raw_op, dict) else {}
                    method = str(op.get("method", "GET")).upper()
                    body: dict[str, Json] = {
                        "apiName": api_name,
                        "basePath": "/" + base_path.strip("/"),
                        "relPath": "/" + rel_path.strip("/"),
                        "verb": method,
                        "action": _qualify(action, package, namespace),
                        "responseType": str(op.get("response", "json")),
                    }
                    out.append(Step("apis", f"{body['basePath']} {body['relPath']} {method}", body))
    return out
