"""Trigger use cases: create, update, get, list, delete, and fire (runs active rules' actions)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from stockade.config import LimitSettings
from stockade.domain import (
    JSON,
    Activation,
    ActivationResponse,
    ActivationStatus,
    Clock,
    EntityPath,
    Identity,
    Trigger,
    as_mapping,
    bump_version,
    check_kv_size,
    fingerprint_refs,
    kv_get,
    kv_to_dict,
    new_activation_id,
    parse_entity_fields,
    parse_fqn,
)
from stockade.errors import BadRequestError, ConflictError, PlatformError
from stockade.security.authz import Permission
from stockade.services.activations import ActivationRecorder
from stockade.services.catalog import Catalog
from stockade.services.invoke import InvokeRequest, InvokeService
from stockade.services.records import trigger_from_doc, trigger_to_doc
from stockade.services.throttle import Throttle
from stockade.services.vault import ParameterVault
from stockade.store import Delete, Put

__all__ = ["TriggerService"]


class TriggerService:
    """Triggers and firing them."""

    def __init__(
        self,
        catalog: Catalog,
        invoke: InvokeService,
        recorder: ActivationRecorder,
        throttle: Throttle,
        limits: LimitSettings,
        clock: Clock,
        vault: ParameterVault,
    ) -> None:
        self._vault = vault
        self._catalog = catalog
        self._invoke = invoke
        self._recorder = recorder
        self._throttle = throttle
        self._limits = limits
        self._clock = clock

    async def _require(self, identity: Identity, path: EntityPath, permission: Permission) -> None:
        await self._catalog.access.require(identity, path.namespace, permission, path.relative, fqn=path.fqn)

    async def put(self, identity: Identity, path: EntityPath, body: Any, *, overwrite: bool) -> Trigger:
        """Create or update a trigger; updates keep its rules."""
        await self._require(identity, path, Permission.WRITE)
        payload = as_mapping(body, "body")
        existing = await self._catalog.get(path.namespace, path.name, "triggers")
        if existing is not None and not overwrite:
            raise ConflictError("resource already exists")
        current = trigger_from_doc(path.namespace, path.name, existing.updated, existing.doc) if existing else None
        fields = parse_entity_fields(payload)
        version, publish, parameters, annotations = (
            fields.version,
            fields.publish,
            fields.parameters,
            fields.annotations,
        )
        feed = kv_get(annotations or (), "feed")
        if feed is not None:
            try:
                if not isinstance(feed, str):
                    raise BadRequestError("Feed name is not valid")
                parse_fqn(feed, identity.namespace)
            except BadRequestError:
                raise BadRequestError("Feed name is not valid") from None
        if current is None:
            trigger = Trigger(
                path=path,
                version=version or "0.0.1",
                publish=bool(publish),
                parameters=parameters or (),
                annotations=annotations or (),
            )
        else:
            trigger = replace(
                current,
                version=version or bump_version(current.version),
                publish=current.publish if publish is None else publish,
                parameters=current.parameters if parameters is None else parameters,
                annotations=current.annotations if annotations is None else annotations,
            )
        trigger = replace(trigger, updated=self._clock.now_ms())
        if fingerprint_refs(trigger.parameters):
            sources = self._catalog.sealed_sources(path.namespace, current.parameters if current else ())
            adopted = await self._vault.adopt(path.namespace, "triggers", path.name, trigger.parameters, sources)
            trigger = replace(trigger, parameters=adopted)
        check_kv_size(trigger.parameters, "parameters", self._limits.max_parameters_bytes)
        check_kv_size(trigger.annotations, "annotations", self._limits.max_parameters_bytes)
        trigger = replace(
            trigger, parameters=await self._vault.seal(path.namespace, "triggers", path.name, trigger.parameters)
        )
        await self._catalog.store.apply(
            [
                Put(
                    path.namespace,
                    path.name,
                    "triggers",
                    trigger_to_doc(trigger),
                    trigger.updated,
                    expected_revision=existing.revision if existing else None,
                )
            ]
        )
        return trigger

    async def get(self, identity: Identity, path: EntityPath) -> Trigger:
        """One trigger."""
        await self._require(identity, path, Permission.READ)
        return await self._catalog.trigger(path.namespace, path.name)

    async def list(self, identity: Identity, namespace: str, *, skip: int, limit: int) -> list[dict[str, JSON]]:
        """Triggers of the caller's namespace."""
        await self._catalog.access.require(identity, namespace, Permission.READ, namespace)
        entities = await self._catalog.store.list_entities(namespace, "triggers", package="", skip=skip, limit=limit)
        return [trigger_from_doc(namespace, e.name, e.updated, e.doc).to_summary() for e in entities]

    async def count(self, identity: Identity, namespace: str) -> int:
        """Number of triggers."""
        await self._catalog.access.require(identity, namespace, Permission.READ, namespace)
        return await self._catalog.store.count_entities(namespace, "triggers", package="")

    async def delete(self, identity: Identity, path: EntityPath) -> Trigger:
        """Delete a trigger (its rules are left and report inactive)."""
        await self._require(identity, path, Permission.WRITE)
        entity = await self._catalog.require(path.namespace, path.name, "triggers")
        await self._catalog.store.apply([Delete(path.namespace, path.name, entity.revision)])
        return trigger_from_doc(path.namespace, path.name, entity.updated, entity.doc)

    async def fire(
        self,
        identity: Identity,
        path: EntityPath,
        body: Mapping[str, JSON],
        headers: Mapping[str, str],
        *,
        transaction_id: str,
    ) -> str | None:
        """Fire: None when no rule is active (204), else the trigger activation id (202).

        Each active rule invokes its action as the caller, non-blocking, with trigger
        parameters < ``__ow_headers`` < fire body.
        """
        await self._require(identity, path, Permission.INVOKE)
        trigger = await self._catalog.trigger(path.namespace, path.name)
        active = [(key, action) for key, action, status in trigger.rules if status == "active"]
        if not active:
            return None
        await self._throttle.admit_fire(identity.namespace)
        activation_id = new_activation_id()
        start_ms = self._clock.now_ms()
        defaults = kv_to_dict(await self._vault.reveal_values(trigger.parameters))
        payload: dict[str, JSON] = {**defaults, "__ow_headers": dict(headers), **body}
        logs: list[str] = []
        for rule_key, action in active:
            entry: dict[str, JSON] = {"rule": rule_key, "action": action.relative}
            try:
                result = await self._invoke.invoke(
                    InvokeRequest(
                        identity=identity,
                        path=action,
                        params=payload,
                        blocking=False,
                        transaction_id=transaction_id,
                    )
                )
                entry = {"statusCode": 0, "success": True, "activationId": result.activation_id, **entry}
            except PlatformError as exc:
                code = 3 if exc.status >= 500 else 1
                entry = {"statusCode": code, "success": False, "error": exc.message, **entry}
            logs.append(json.dumps(entry, separators=(",", ":")))
        # Durable before the 202 (the rules' activations were each journalled by invoke).
        await self._recorder.finish(
            Activation(
                activation_id=activation_id,
                namespace=identity.namespace,
                subject=identity.subject,
                name=trigger.path.name,
                version=trigger.version,
                start=start_ms,
                end=0,
                response=ActivationResponse(ActivationStatus.SUCCESS, dict(body)),
                logs=tuple(logs),
                entity_path=trigger.path.relative,
            )
        )
        return activation_id
