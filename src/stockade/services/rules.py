"""Rule use cases: create, update, enable/disable, get, list, delete.

A rule's status lives on its trigger (OpenWhisk's model); rule and trigger are written in one
atomic batch so neither can be left half-updated.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stockade.domain import (
    JSON,
    EntityPath,
    Identity,
    Rule,
    RuleStatus,
    as_mapping,
    bump_version,
    parse_entity_fields,
    parse_fqn,
)
from stockade.errors import BadRequestError, ConflictError, NotFoundError
from stockade.security.authz import Permission
from stockade.services.catalog import Catalog
from stockade.services.records import rule_from_doc, rule_to_doc, trigger_from_doc, trigger_to_doc
from stockade.store import Delete, Put, StoredEntity, Write

__all__ = ["RuleService"]


class RuleService:
    """Rules connect triggers to actions."""

    def __init__(self, catalog: Catalog, now_ms: Any) -> None:
        self._catalog = catalog
        self._now_ms = now_ms

    def _ref(self, raw: Any, namespace: str) -> EntityPath:
        if isinstance(raw, dict):
            raw = f"/{raw.get('path', '')}/{raw.get('name', '')}"
        if not isinstance(raw, str) or not raw:
            raise BadRequestError("rule requires a valid trigger and a valid action")
        try:
            return parse_fqn(raw, namespace)
        except BadRequestError:
            raise BadRequestError("rule requires a valid trigger and a valid action") from None

    async def _trigger_entity(self, identity: Identity, trigger: EntityPath) -> StoredEntity:
        await self._catalog.access.require(identity, trigger.namespace, Permission.READ, trigger.relative)
        entity = await self._catalog.store.get_entity(trigger.namespace, trigger.key)
        if entity is None or entity.collection != "triggers":
            raise BadRequestError(f"trigger {trigger.fqn} does not exist")
        return entity

    async def _status(self, rule: Rule) -> RuleStatus:
        entity = await self._catalog.store.get_entity(rule.trigger.namespace, rule.trigger.key)
        if entity is None or entity.collection != "triggers":
            return "inactive"
        trigger = trigger_from_doc(entity.namespace, entity.name, entity.updated, entity.doc)
        return trigger.rule_status(rule.path.relative)

    async def put(self, identity: Identity, path: EntityPath, body: Any, *, overwrite: bool) -> dict[str, JSON]:
        """Create (active) or update (status kept) a rule."""
        await self._catalog.access.require(identity, path.namespace, Permission.WRITE, path.relative)
        payload = as_mapping(body, "body")
        existing = await self._catalog.get(path.namespace, path.name, "rules")
        if existing is not None and not overwrite:
            raise ConflictError("resource already exists")
        current = rule_from_doc(path.namespace, path.name, existing.updated, existing.doc) if existing else None
        trigger_path = (
            self._ref(payload.get("trigger"), identity.namespace) if payload.get("trigger") or not current else None
        )
        action_path = (
            self._ref(payload.get("action"), identity.namespace) if payload.get("action") or not current else None
        )
        trigger_path = trigger_path or (current.trigger if current else None)
        action_path = action_path or (current.action if current else None)
        if trigger_path is None or action_path is None:
            raise BadRequestError("rule requires a valid trigger and a valid action")
        trigger_entity = await self._trigger_entity(identity, trigger_path)
        try:
            await self._catalog.resolve_action(identity, action_path)
        except (NotFoundError, ConflictError):
            raise BadRequestError(f"action {action_path.fqn} does not exist") from None
        fields = parse_entity_fields(payload)
        version, annotations = fields.version, fields.annotations
        if current is None:
            rule = Rule(
                path=path,
                trigger=trigger_path,
                action=action_path,
                version=version or "0.0.1",
                annotations=annotations or (),
                publish=bool(payload.get("publish", False)),
            )
            status: RuleStatus = "active"
        else:
            status = await self._status(current)
            rule = replace(
                current,
                trigger=trigger_path,
                action=action_path,
                version=version or bump_version(current.version),
                annotations=current.annotations if annotations is None else annotations,
            )
        rule = replace(rule, updated=self._now_ms())
        writes: list[Write] = [
            Put(
                path.namespace,
                path.name,
                "rules",
                rule_to_doc(rule),
                rule.updated,
                expected_revision=existing.revision if existing else None,
            )
        ]
        writes.extend(await self._move_rule(current, rule, status, trigger_entity))
        await self._catalog.store.apply(writes)
        return rule.to_json(status)

    async def _move_rule(
        self, old: Rule | None, new: Rule, status: RuleStatus, new_trigger: StoredEntity
    ) -> list[Write]:
        """Writes that register ``new`` on its trigger and drop ``old`` from a previous one."""
        key = new.path.relative
        writes: list[Write] = []
        if old is not None and old.trigger != new.trigger:
            previous = await self._catalog.store.get_entity(old.trigger.namespace, old.trigger.key)
            if previous is not None and previous.collection == "triggers":
                trig = trigger_from_doc(previous.namespace, previous.name, previous.updated, previous.doc)
                writes.append(
                    Put(
                        previous.namespace,
                        previous.name,
                        "triggers",
                        trigger_to_doc(trig.without_rule(key)),
                        previous.updated,
                        expected_revision=previous.revision,
                    )
                )
        trigger = trigger_from_doc(new_trigger.namespace, new_trigger.name, new_trigger.updated, new_trigger.doc)
        writes.append(
            Put(
                new_trigger.namespace,
                new_trigger.name,
                "triggers",
                trigger_to_doc(trigger.with_rule(key, new.action, status)),
                new_trigger.updated,
                expected_revision=new_trigger.revision,
            )
        )
        return writes

    async def set_status(self, identity: Identity, path: EntityPath, body: Any) -> None:
        """Enable or disable a rule."""
        await self._catalog.access.require(identity, path.namespace, Permission.WRITE, path.relative)
        payload = as_mapping(body, "body")
        status = payload.get("status")
        if status not in ("active", "inactive"):
            raise BadRequestError("Rule status must be one of 'active' or 'inactive'.")
        rule = await self._catalog.rule(path.namespace, path.name)
        entity = await self._catalog.store.get_entity(rule.trigger.namespace, rule.trigger.key)
        if entity is None or entity.collection != "triggers":
            raise NotFoundError("Only rules with existing triggers can be activated")
        trigger = trigger_from_doc(entity.namespace, entity.name, entity.updated, entity.doc)
        updated = trigger.with_rule(path.relative, rule.action, status)
        await self._catalog.store.apply(
            [
                Put(
                    entity.namespace,
                    entity.name,
                    "triggers",
                    trigger_to_doc(updated),
                    entity.updated,
                    expected_revision=entity.revision,
                )
            ]
        )

    async def get(self, identity: Identity, path: EntityPath) -> dict[str, JSON]:
        """A rule with its status."""
        await self._catalog.access.require(identity, path.namespace, Permission.READ, path.relative)
        rule = await self._catalog.rule(path.namespace, path.name)
        return rule.to_json(await self._status(rule))

    async def list(self, identity: Identity, namespace: str, *, skip: int, limit: int) -> list[dict[str, JSON]]:
        """Rules of the caller's namespace (without status, as upstream)."""
        await self._catalog.access.require(identity, namespace, Permission.READ, namespace)
        entities = await self._catalog.store.list_entities(namespace, "rules", package="", skip=skip, limit=limit)
        return [rule_from_doc(namespace, e.name, e.updated, e.doc).to_summary() for e in entities]

    async def count(self, identity: Identity, namespace: str) -> int:
        """Number of rules."""
        await self._catalog.access.require(identity, namespace, Permission.READ, namespace)
        return await self._catalog.store.count_entities(namespace, "rules", package="")

    async def delete(self, identity: Identity, path: EntityPath) -> dict[str, JSON]:
        """Delete a rule and unregister it from its trigger atomically."""
        await self._catalog.access.require(identity, path.namespace, Permission.WRITE, path.relative)
        entity = await self._catalog.require(path.namespace, path.name, "rules")
        rule = rule_from_doc(path.namespace, path.name, entity.updated, entity.doc)
        writes: list[Write] = [Delete(path.namespace, path.name, entity.revision)]
        trig_entity = await self._catalog.store.get_entity(rule.trigger.namespace, rule.trigger.key)
        if trig_entity is not None and trig_entity.collection == "triggers":
            trigger = trigger_from_doc(trig_entity.namespace, trig_entity.name, trig_entity.updated, trig_entity.doc)
            writes.append(
                Put(
                    trig_entity.namespace,
                    trig_entity.name,
                    "triggers",
                    trigger_to_doc(trigger.without_rule(path.relative)),
                    trig_entity.updated,
                    expected_revision=trig_entity.revision,
                )
            )
        await self._catalog.store.apply(writes)
        return rule.to_json("inactive")
