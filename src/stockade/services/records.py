"""Entity records ↔ stored documents. Action code is stored apart, by content digest."""

from __future__ import annotations

from typing import Any

from stockade.domain import (
    JSON,
    Action,
    Binding,
    EntityPath,
    Exec,
    KeyValue,
    KeyValues,
    Limits,
    Package,
    Rule,
    Sealed,
    Trigger,
    kv_from_json,
    kv_to_json,
)

__all__ = [
    "action_from_doc",
    "action_summary",
    "action_to_doc",
    "package_from_doc",
    "package_to_doc",
    "params_from_doc",
    "params_to_doc",
    "rule_from_doc",
    "rule_to_doc",
    "trigger_from_doc",
    "trigger_to_doc",
]


def params_to_doc(values: KeyValues) -> list[dict[str, JSON]]:
    """Stored form of parameters: sealed values keep their ciphertext, never a fingerprint."""
    out: list[dict[str, JSON]] = []
    for kv in values:
        item: dict[str, JSON] = {"key": kv.key}
        if isinstance(kv.value, Sealed):
            item["sealed"] = dict(kv.value.box)
        else:
            item["value"] = kv.value
        if kv.init:
            item["init"] = True
        out.append(item)
    return out


def params_from_doc(raw: Any, namespace: str, collection: str, entity: str) -> KeyValues:
    """Parameters from their stored form; sealed ones are bound to this location."""
    out: list[KeyValue] = []
    for item in raw or ():
        key = item["key"]
        if "sealed" in item:
            value: JSON = Sealed(item["sealed"], (namespace, collection, entity, key))
        else:
            value = item.get("value")
        out.append(KeyValue(key, value, bool(item.get("init", False))))
    return tuple(out)


def _path(namespace: str, name: str) -> EntityPath:
    if "/" in name:
        package, simple = name.split("/", 1)
        return EntityPath(namespace, simple, package)
    return EntityPath(namespace, name)


def action_to_doc(action: Action) -> dict[str, JSON]:
    """Stored form of an action; the code itself goes to the code store under ``codeDigest``."""
    exec_doc: dict[str, JSON] = {"kind": action.exec.kind}
    if action.exec.is_sequence:
        exec_doc["components"] = list(action.exec.components)
    else:
        exec_doc["codeDigest"] = action.exec.code_digest
        exec_doc["binary"] = action.exec.binary
        if action.exec.main is not None:
            exec_doc["main"] = action.exec.main
    return {
        "version": action.version,
        "publish": action.publish,
        "exec": exec_doc,
        "parameters": params_to_doc(action.parameters),
        "annotations": kv_to_json(action.annotations),
        "limits": action.limits.to_json(),
    }


def action_from_doc(namespace: str, name: str, updated: int, doc: dict[str, Any], code: str) -> Action:
    """An action from its stored form and its code."""
    exec_doc = doc["exec"]
    limits = doc["limits"]
    return Action(
        path=_path(namespace, name),
        exec=Exec(
            kind=exec_doc["kind"],
            code=code,
            main=exec_doc.get("main"),
            components=tuple(exec_doc.get("components", ())),
        ),
        version=doc["version"],
        publish=bool(doc.get("publish", False)),
        parameters=params_from_doc(doc.get("parameters"), namespace, "actions", name),
        annotations=kv_from_json(doc.get("annotations"), "annotations"),
        limits=Limits(limits["timeout"], limits["memory"], limits["logs"], limits.get("concurrency", 1)),
        updated=updated,
    )


def action_summary(namespace: str, name: str, updated: int, doc: dict[str, Any]) -> dict[str, JSON]:
    """The list form of a stored action, without loading its code."""
    path = _path(namespace, name)
    return {
        "namespace": path.path,
        "name": path.name,
        "version": doc["version"],
        "publish": bool(doc.get("publish", False)),
        "annotations": doc.get("annotations", []),
        "limits": doc["limits"],
        "exec": {"binary": bool(doc["exec"].get("binary", False))},
        "updated": updated,
    }


def package_to_doc(package: Package) -> dict[str, JSON]:
    """Stored form of a package."""
    return {
        "version": package.version,
        "publish": package.publish,
        "parameters": params_to_doc(package.parameters),
        "annotations": kv_to_json(package.annotations),
        "binding": package.binding.to_json() if package.binding else None,
    }


def package_from_doc(namespace: str, name: str, updated: int, doc: dict[str, Any]) -> Package:
    """A package from its stored form."""
    binding = doc.get("binding")
    return Package(
        path=EntityPath(namespace, name),
        version=doc["version"],
        publish=bool(doc.get("publish", False)),
        parameters=params_from_doc(doc.get("parameters"), namespace, "packages", name),
        annotations=kv_from_json(doc.get("annotations"), "annotations"),
        binding=Binding(binding["namespace"], binding["name"]) if binding else None,
        updated=updated,
    )


def _ref(doc: dict[str, Any]) -> EntityPath:
    path = doc["path"]
    if "/" in path:
        ns, pkg = path.split("/", 1)
        return EntityPath(ns, doc["name"], pkg)
    return EntityPath(path, doc["name"])


def trigger_to_doc(trigger: Trigger) -> dict[str, JSON]:
    """Stored form of a trigger, with its rules map."""
    return {
        "version": trigger.version,
        "publish": trigger.publish,
        "parameters": params_to_doc(trigger.parameters),
        "annotations": kv_to_json(trigger.annotations),
        "rules": [
            {"rule": key, "action": {"path": action.path, "name": action.name}, "status": status}
            for key, action, status in trigger.rules
        ],
    }


def trigger_from_doc(namespace: str, name: str, updated: int, doc: dict[str, Any]) -> Trigger:
    """A trigger from its stored form."""
    return Trigger(
        path=EntityPath(namespace, name),
        version=doc["version"],
        publish=bool(doc.get("publish", False)),
        parameters=params_from_doc(doc.get("parameters"), namespace, "triggers", name),
        annotations=kv_from_json(doc.get("annotations"), "annotations"),
        rules=tuple((r["rule"], _ref(r["action"]), r["status"]) for r in doc.get("rules", ())),
        updated=updated,
    )


def rule_to_doc(rule: Rule) -> dict[str, JSON]:
    """Stored form of a rule."""
    return {
        "version": rule.version,
        "publish": rule.publish,
        "annotations": kv_to_json(rule.annotations),
        "trigger": {"path": rule.trigger.path, "name": rule.trigger.name},
        "action": {"path": rule.action.path, "name": rule.action.name},
    }


def rule_from_doc(namespace: str, name: str, updated: int, doc: dict[str, Any]) -> Rule:
    """A rule from its stored form."""
    return Rule(
        path=EntityPath(namespace, name),
        trigger=_ref(doc["trigger"]),
        action=_ref(doc["action"]),
        version=doc["version"],
        publish=bool(doc.get("publish", False)),
        annotations=kv_from_json(doc.get("annotations"), "annotations"),
        updated=updated,
    )
