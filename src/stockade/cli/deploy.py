"""``stockade deploy -m manifest.yaml``, ``stockade undeploy -m manifest.yaml`` and ``stockade export``.

Deploy writes what a wskdeploy manifest describes (creating or updating, in dependency order) and
shows the deploy gate's findings for every code action; undeploy deletes it in reverse order;
export writes a manifest (and the code files next to it) that deploys back losslessly: sealed
parameters travel as fingerprints with transfer tokens, which only the platform can open, only
back into the same namespace.
"""

from __future__ import annotations

import argparse
import base64
from pathlib import Path
from typing import Any

import yaml

from stockade.cli.client import CliError, Json
from stockade.cli.context import Context, Subparsers, add_command
from stockade.cli.manifest import (
    DEFAULT_PACKAGE,
    MANAGED_ANNOTATION,
    Step,
    load_manifest,
    parse_manifest,
)
from stockade.cli.names import segment

__all__ = ["register"]

_SYSTEM_ANNOTATIONS = frozenset({"exec", MANAGED_ANNOTATION, "binding"})
_EXTENSION = {"python": ".py", "nodejs": ".js"}
_PAGE = 200
_ABSENT = object()


def _entity_path(namespace: str, step: Step) -> str:
    return f"namespaces/{segment(namespace)}/{step.collection}/" + "/".join(segment(p) for p in step.name.split("/"))


def _findings(ctx: Context, namespace: str, name: str) -> str:
    """The gate's decision and counts for the current version of an action."""
    path = f"namespaces/{segment(namespace)}/scans/" + "/".join(segment(p) for p in name.split("/"))
    reply = ctx.client.request("GET", path, accept=(403, 404))
    data = reply.data if isinstance(reply.data, dict) else {}
    if reply.status != 200 or not data:
        return "no scan report"
    report = data.get("report") if isinstance(data.get("report"), dict) else {}
    counts = (report or {}).get("counts") or {}
    found = ", ".join(f"{n} {severity}" for severity, n in counts.items() if n) or "no findings"
    return f"gate {data.get('decision', '?')}: {found}"


def _deploy(ctx: Context, args: argparse.Namespace) -> int:
    """``deploy -m FILE``."""
    file = Path(args.manifest)
    manifest = parse_manifest(load_manifest(file), file.parent, ctx.namespace, file=file.name)
    namespace = ctx.namespace
    for step in manifest.steps:
        if step.collection == "apis":
            reply = ctx.client.put(f"namespaces/{segment(namespace)}/apis", step.body, overwrite=True)
            ctx.out.line(f"api {step.name}: {reply.data.get('url', 'ok') if isinstance(reply.data, dict) else 'ok'}")
            continue
        params: dict[str, str | int] = {"overwrite": "true"}
        if step.is_code and args.accept_risk is not None:
            params["acceptRisk"] = args.accept_risk
        try:
            ctx.client.request("PUT", _entity_path(namespace, step), params=params, body=step.body)
        except CliError as exc:
            raise CliError(
                f"deploying {step.collection[:-1]} {step.name} failed: {exc.message}",
                exit_code=exc.exit_code,
                status=exc.status,
                request_id=exc.request_id,
            ) from exc
        detail = f" ({_findings(ctx, namespace, step.name)})" if step.is_code else ""
        ctx.out.line(f"{step.collection[:-1]} {step.name}: deployed{detail}")
    ctx.out.ok(f"deployed project {manifest.project or file.name} ({len(manifest.steps)} entities)")
    return 0


def _undeploy(ctx: Context, args: argparse.Namespace) -> int:
    """``undeploy -m FILE``: delete what the manifest deploys, in reverse order."""
    file = Path(args.manifest)
    manifest = parse_manifest(load_manifest(file), file.parent, ctx.namespace, file=file.name)
    namespace = ctx.namespace
    for step in reversed(manifest.steps):
        if step.collection == "apis":
            body = step.body
            query: dict[str, str | int] = {
                "basepath": str(body["basePath"]),
                "relpath": str(body["relPath"]),
                "operation": str(body["verb"]),
            }
            reply = ctx.client.request("DELETE", f"namespaces/{segment(namespace)}/apis", params=query, accept=(404,))
        else:
            reply = ctx.client.request("DELETE", _entity_path(namespace, step), accept=(404, 409))
        outcome = {200: "deleted", 404: "not there", 409: "kept (not empty)"}.get(reply.status, str(reply.status))
        ctx.out.line(f"{step.collection[:-1]} {step.name}: {outcome}")
    ctx.out.ok(f"undeployed project {manifest.project or file.name}")
    return 0


def _list_all(ctx: Context, namespace: str, collection: str) -> list[dict[str, Json]]:
    items: list[dict[str, Json]] = []
    skip = 0
    while True:
        page = ctx.client.get(f"namespaces/{segment(namespace)}/{collection}", {"limit": _PAGE, "skip": skip}).data
        if not isinstance(page, list):
            return items
        items.extend(item for item in page if isinstance(item, dict))
        if len(page) < _PAGE:
            return items
        skip += _PAGE


def _managed_by(entity: dict[str, Json], project: str | None) -> bool:
    if project is None:
        return True
    for item in entity.get("annotations") or []:
        if isinstance(item, dict) and item.get("key") == MANAGED_ANNOTATION:
            value = item.get("value")
            return isinstance(value, dict) and value.get("projectName") == project
    return False


def _inputs(parameters: Any) -> dict[str, Json]:
    """Parameters as manifest inputs; sealed ones as their fingerprint (never a value)."""
    out: dict[str, Json] = {}
    for item in parameters or []:
        key, value = item.get("key"), item.get("value")
        if item.get("encryption"):
            out[key] = {"value": value, "encryption": item["encryption"]}
            if item.get("sealed"):
                out[key]["sealed"] = item["sealed"]
        elif isinstance(value, dict):
            out[key] = {"type": "json", "value": value}
        else:
            out[key] = value
    return out


def _annotations(annotations: Any) -> dict[str, Json]:
    return {a["key"]: a.get("value") for a in annotations or [] if a.get("key") not in _SYSTEM_ANNOTATIONS}


def _short(fqn: str, namespace: str) -> str:
    prefix = f"/{namespace}/"
    return fqn[len(prefix) :] if fqn.startswith(prefix) else fqn


def _export(ctx: Context, args: argparse.Namespace) -> int:
    """``export -m FILE [--project NAME]``: a manifest (and code files) of the namespace or one project."""
    out_file = Path(args.manifest)
    base = out_file.parent
    listed = ctx.client.get("namespaces").data
    namespace = ctx.namespace
    if namespace == "_" and isinstance(listed, list) and listed:
        namespace = str(listed[0])
    packages: dict[str, dict[str, Json]] = {}

    def package(name: str) -> dict[str, Json]:
        return packages.setdefault(name, {})

    skipped: list[str] = []
    package_inputs: dict[str, dict[str, Json]] = {}
    for pkg in _list_all(ctx, namespace, "packages"):
        if not _managed_by(pkg, args.project):
            continue
        name = str(pkg.get("name"))
        if pkg.get("binding"):
            skipped.append(f"binding {name}")
            continue
        full = (
            ctx.client.get(f"namespaces/{segment(namespace)}/packages/{segment(name)}", {"sealed": "true"}).data or {}
        )
        spec = package(name)
        spec["public"] = bool(full.get("publish"))
        package_inputs[name] = {p.get("key"): p.get("value") for p in full.get("parameters") or []}
        if full.get("parameters"):
            spec["inputs"] = _inputs(full.get("parameters"))
        annotations = _annotations(full.get("annotations"))
        if annotations:
            spec["annotations"] = annotations
    for summary in _list_all(ctx, namespace, "actions"):
        if not _managed_by(summary, args.project):
            continue
        pkg_path = str(summary.get("namespace", namespace))
        pkg_name = pkg_path.split("/", 1)[1] if "/" in pkg_path else DEFAULT_PACKAGE
        name = str(summary.get("name"))
        key = name if pkg_name == DEFAULT_PACKAGE else f"{pkg_name}/{name}"
        path = f"namespaces/{segment(namespace)}/actions/" + "/".join(segment(p) for p in key.split("/"))
        action = ctx.client.get(path, {"code": "true", "sealed": "true"}).data or {}
        exec_ = action.get("exec") or {}
        annotations = _annotations(action.get("annotations"))
        if exec_.get("kind") == "sequence":
            sequences = package(pkg_name).setdefault("sequences", {})
            entry: dict[str, Json] = {"actions": ", ".join(_short(c, namespace) for c in exec_.get("components", []))}
            if annotations:
                entry["annotations"] = annotations
            sequences[name] = entry
            continue
        kind = str(exec_.get("kind", ""))
        family = kind.split(":", 1)[0]
        binary = bool(exec_.get("binary"))
        relative = Path(pkg_name) / (name + (".zip" if binary else _EXTENSION.get(family, ".txt")))
        target = base / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        code = str(exec_.get("code", ""))
        if binary:
            target.write_bytes(base64.b64decode(code))
        else:
            target.write_text(code, encoding="utf-8")
        entry = {"function": str(relative), "runtime": kind}
        if exec_.get("main"):
            entry["main"] = exec_["main"]
        # A packaged action reads back with its package's parameters merged in: keep only its own.
        inherited = package_inputs.get(pkg_name, {})
        own = [p for p in action.get("parameters") or [] if inherited.get(p.get("key"), _ABSENT) != p.get("value")]
        if own:
            entry["inputs"] = _inputs(own)
        if annotations:
            entry["annotations"] = annotations
        limits = action.get("limits") or {}
        entry["limits"] = {
            "timeout": limits.get("timeout"),
            "memorySize": limits.get("memory"),
            "logSize": limits.get("logs"),
            "concurrentActivations": limits.get("concurrency", 1),
        }
        package(pkg_name).setdefault("actions", {})[name] = entry
    for summary in _list_all(ctx, namespace, "triggers"):
        if not _managed_by(summary, args.project):
            continue
        name = str(summary.get("name"))
        trigger = (
            ctx.client.get(f"namespaces/{segment(namespace)}/triggers/{segment(name)}", {"sealed": "true"}).data or {}
        )
        entry = {}
        if trigger.get("parameters"):
            entry["inputs"] = _inputs(trigger.get("parameters"))
        annotations = _annotations(trigger.get("annotations"))
        if annotations:
            entry["annotations"] = annotations
        package(DEFAULT_PACKAGE).setdefault("triggers", {})[name] = entry
    for summary in _list_all(ctx, namespace, "rules"):
        if not _managed_by(summary, args.project):
            continue
        name = str(summary.get("name"))
        rule = ctx.client.get(f"namespaces/{segment(namespace)}/rules/{segment(name)}").data or {}
        trigger_ref, action_ref = rule.get("trigger") or {}, rule.get("action") or {}
        action_fqn = f"/{action_ref.get('path')}/{action_ref.get('name')}"
        package(DEFAULT_PACKAGE).setdefault("rules", {})[name] = {
            "trigger": str(trigger_ref.get("name")),
            "action": _short(action_fqn, namespace) if action_ref.get("path") == namespace else action_fqn,
        }
    if args.project is None:
        routes = ctx.client.get(f"namespaces/{segment(namespace)}/apis").data or []
        for route in routes if isinstance(routes, list) else []:
            api = package(DEFAULT_PACKAGE).setdefault("apis", {}).setdefault(route.get("apiName") or "api", {})
            rels = api.setdefault(str(route["basePath"]).strip("/"), {})
            ops = rels.setdefault(str(route["relPath"]).strip("/"), {})
            ops[str(route["action"])] = {"method": route["verb"], "response": route.get("responseType", "json")}
    document = {"project": {"name": args.project or namespace, "packages": packages}}
    out_file.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    for note in skipped:
        ctx.out.line(f"not exported: {note} (bind it again after deploying)")
    ctx.out.ok(
        f"exported {sum(len(v) for p in packages.values() for v in p.values() if isinstance(v, dict))} entities to {out_file}"
    )
    return 0


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add ``deploy``, ``undeploy`` and ``export``."""
    deploy = add_command(groups, "deploy", _deploy, "deploy a wskdeploy manifest (create or update everything in it)")
    deploy.add_argument("-m", "--manifest", required=True, metavar="FILE", help="the manifest (manifest.yaml)")
    deploy.add_argument(
        "--accept-risk",
        metavar="REASON",
        help="deploy despite blocking security-gate findings; the reason is recorded with your identity",
    )
    undeploy = add_command(groups, "undeploy", _undeploy, "delete what a wskdeploy manifest deploys")
    undeploy.add_argument("-m", "--manifest", required=True, metavar="FILE", help="the manifest (manifest.yaml)")
    export = add_command(groups, "export", _export, "write a manifest (and code files) that redeploys losslessly")
    export.add_argument("-m", "--manifest", required=True, metavar="FILE", help="where to write the manifest")
    export.add_argument("--project", metavar="NAME", help="only entities deployed as this project (default: all)")
