"""Triggers and rules."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, final

from stockade.domain.entities import JSON, KeyValues, kv_to_json
from stockade.domain.names import EntityPath

__all__ = ["Rule", "RuleStatus", "Trigger"]

RuleStatus = Literal["active", "inactive"]


@final
@dataclass(frozen=True, slots=True)
class Trigger:
    """A named event source; firing it runs the actions of its active rules."""

    path: EntityPath
    version: str = "0.0.1"
    publish: bool = False
    parameters: KeyValues = ()
    annotations: KeyValues = ()
    # "ns/rule" → (action FQN path, action name, status); kept on the trigger as OpenWhisk does.
    rules: tuple[tuple[str, EntityPath, RuleStatus], ...] = ()
    updated: int = 0

    def with_rule(self, rule_key: str, action: EntityPath, status: RuleStatus) -> Trigger:
        """A copy with ``rule_key`` set to ``status``."""
        others = tuple(r for r in self.rules if r[0] != rule_key)
        return replace(self, rules=(*others, (rule_key, action, status)))

    def without_rule(self, rule_key: str) -> Trigger:
        """A copy without ``rule_key``."""
        return replace(self, rules=tuple(r for r in self.rules if r[0] != rule_key))

    def rule_status(self, rule_key: str) -> RuleStatus:
        """``inactive`` unless the rule is registered as active."""
        for key, _action, status in self.rules:
            if key == rule_key:
                return status
        return "inactive"

    def to_summary(self) -> dict[str, JSON]:
        """The list form."""
        return {
            "namespace": self.path.namespace,
            "name": self.path.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": kv_to_json(self.annotations),
            "updated": self.updated,
        }

    def to_json(self) -> dict[str, JSON]:
        """The full trigger document with its ``rules`` map."""
        doc = {**self.to_summary(), "parameters": kv_to_json(self.parameters), "limits": {}}
        if self.rules:
            doc["rules"] = {
                key: {"action": {"path": action.path, "name": action.name}, "status": status}
                for key, action, status in self.rules
            }
        return doc


@final
@dataclass(frozen=True, slots=True)
class Rule:
    """Connects a trigger to an action."""

    path: EntityPath
    trigger: EntityPath
    action: EntityPath
    version: str = "0.0.1"
    publish: bool = False
    annotations: KeyValues = ()
    updated: int = 0

    def to_summary(self) -> dict[str, JSON]:
        """The list form (no ``status``, as upstream)."""
        return {
            "namespace": self.path.namespace,
            "name": self.path.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": kv_to_json(self.annotations),
            "trigger": {"path": self.trigger.path, "name": self.trigger.name},
            "action": {"path": self.action.path, "name": self.action.name},
            "updated": self.updated,
        }

    def to_json(self, status: RuleStatus) -> dict[str, JSON]:
        """The full rule with its derived ``status``."""
        return {**self.to_summary(), "status": status}
