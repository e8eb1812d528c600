"""Action use cases: create or update (atomic), get, list, delete."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stockade.config import LimitSettings
from stockade.domain import (
    JSON,
    POLICY_ANNOTATION,
    SEQUENCE_KIND,
    Action,
    EntityPath,
    Exec,
    Identity,
    KeyValue,
    LimitBounds,
    Limits,
    as_mapping,
    bump_version,
    check_kv_size,
    fingerprint_refs,
    kv_get,
    kv_merge,
    kv_set,
    kv_to_json,
    kv_without,
    lint_policy,
    parse_entity_fields,
    parse_fqn,
    parse_policy,
    resolve_kind,
)
from stockade.errors import BadRequestError, ConflictError, NotFoundError, PayloadTooLargeError, PlatformError
from stockade.invoker.egress_policy import EgressPolicyError, load_egress_data, parse_egress
from stockade.observability.anomaly import OUTPUT_SCHEMA_ANNOTATION, check_output_schema
from stockade.observability.tags import TAGS_ANNOTATION, parse_tags
from stockade.security.authz import Permission
from stockade.security.integrity import INTEGRITY_FIELD
from stockade.services.catalog import Catalog
from stockade.services.records import action_from_doc, action_summary, action_to_doc
from stockade.services.scans import DeployGate
from stockade.services.schemas import INPUT_SCHEMA_ANNOTATION, check_schema
from stockade.services.secrets import SECRETS_ANNOTATION, SecretService
from stockade.services.vault import ParameterVault
from stockade.store import Delete, Put, StoredEntity

__all__ = ["ActionService", "bounds_from"]


def bounds_from(limits: LimitSettings) -> LimitBounds:
    """Limit ranges from settings."""
    return LimitBounds(
        min_timeout_ms=limits.min_action_timeout_ms,
        max_timeout_ms=limits.max_action_timeout_ms,
        min_memory_mb=limits.min_action_memory_mb,
        max_memory_mb=limits.max_action_memory_mb,
        max_logs_mb=limits.max_action_logs_mb,
        max_concurrency=limits.max_action_concurrency,
    )


def _malformed(detail: str) -> BadRequestError:
    return BadRequestError(f"The request content was malformed:\n{detail}")


def _int_field(raw: Any, name: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _malformed(f"'{name}' must be an integer")
    return raw


class ActionService:
    """Create, read, list and delete actions."""

    def __init__(
        self,
        catalog: Catalog,
        limits: LimitSettings,
        now_ms: Any,
        vault: ParameterVault,
        secrets: SecretService,
        gate: DeployGate | None = None,
    ) -> None:
        self._catalog = catalog
        self._gate = gate
        self._egress_data = load_egress_data()
        self._vault = vault
        self._secrets = secrets
        self._limits = limits
        self._bounds = bounds_from(limits)
        self._now_ms = now_ms

    def _parse_exec(self, raw: Any, namespace: str) -> Exec:
        body = as_mapping(raw, "exec")
        kind = resolve_kind(body.get("kind"))
        if kind == SEQUENCE_KIND:
            components = body.get("components")
            if components is None:
                raise _malformed("'components' must be defined for sequence kind")
            if not isinstance(components, list) or not all(isinstance(c, str) for c in components):
                raise _malformed("'components' must be an array of strings")
            resolved = []
            for component in components:
                if len(component.strip("/").split("/")) < 2:
                    raise BadRequestError("Sequence component does not exist.")
                resolved.append(parse_fqn(component, namespace).fqn)
            return Exec(kind=kind, components=tuple(resolved))
        code = body.get("code")
        if not isinstance(code, str):
            raise _malformed(f"'code' must be a string or attachment object defined in 'exec' for '{kind}' actions")
        size = len(code.encode())
        if size > self._limits.max_code_bytes:
            raise PayloadTooLargeError(f"exec larger than allowed: {size} > {self._limits.max_code_bytes} bytes.")
        main = body.get("main")
        if main is not None and not isinstance(main, str):
            raise _malformed(f"'main' must be a string defined in 'exec' for '{kind}' actions")
        return Exec(kind=kind, code=code, main=main or None)

    def _parse_limits(self, raw: Any, base: Limits) -> Limits:
        body = as_mapping(raw, "limits")
        limits = Limits(
            timeout=_int_field(body.get("timeout", base.timeout), "timeout"),
            memory=_int_field(body.get("memory", base.memory), "memory"),
            logs=_int_field(body.get("logs", base.logs), "logs"),
            concurrency=_int_field(body.get("concurrency", base.concurrency), "concurrency"),
        )
        return limits.validate(self._bounds)

    async def _check_sequence(self, identity: Identity, path: EntityPath, exec_: Exec) -> None:
        """Components exist, are readable, do not refer back to ``path``, and stay under the cap."""
        if not exec_.components:
            raise BadRequestError("No component specified for the sequence.")
        atomic = 0
        pending = list(exec_.components)
        seen: set[str] = set()
        while pending:
            fqn = pending.pop()
            if fqn == path.fqn:
                raise BadRequestError("Sequence may not refer to itself.")
            component = parse_fqn(fqn, identity.namespace)
            try:
                resolved = await self._catalog.resolve_action(identity, component)
            except (NotFoundError, ConflictError):
                raise BadRequestError("Sequence component does not exist.") from None
            inner = resolved.action
            if inner.exec.is_sequence:
                if inner.path.fqn in seen:
                    continue
                seen.add(inner.path.fqn)
                pending.extend(inner.exec.components)
            else:
                atomic += 1
            if atomic > self._limits.max_sequence_length:
                raise BadRequestError("Too many actions in the sequence.")

    async def _container(self, identity: Identity, path: EntityPath) -> None:
        """Writes need WRITE in the namespace; into a package, an existing non-binding one."""
        await self._catalog.access.require(identity, path.namespace, Permission.WRITE, path.relative)
        if path.package is not None:
            package = await self._catalog.package(path.namespace, path.package)
            if package.is_binding:
                raise BadRequestError("Operation not permitted on package binding.")

    async def put(
        self, identity: Identity, path: EntityPath, body: Any, *, overwrite: bool, accept_risk: str | None = None
    ) -> Action:
        """Create or (with ``overwrite``) update an action atomically; code actions pass the deploy
        gate first (``accept_risk`` lets blocking findings through, with the reason recorded)."""
        await self._container(identity, path)
        payload = as_mapping(body, "body")
        existing = await self._catalog.get(path.namespace, path.key, "actions")
        if existing is not None and not overwrite:
            raise ConflictError("resource already exists")
        current = await self._catalog.action_from(existing) if existing is not None else None

        raw_exec = payload.get("exec")
        if current is None and raw_exec is None:
            raise BadRequestError("exec undefined")
        exec_ = self._parse_exec(raw_exec, path.namespace) if raw_exec is not None else None
        if exec_ is not None and exec_.is_sequence:
            await self._check_sequence(identity, path, exec_)

        fields = parse_entity_fields(payload)
        version, publish, parameters = fields.version, fields.publish, fields.parameters
        annotations = fields.annotations or ()
        del_annotations = payload.get("delAnnotations") or []
        if not isinstance(del_annotations, list) or not all(isinstance(k, str) for k in del_annotations):
            raise _malformed("'delAnnotations' must be an array of strings")

        if current is None:
            assert exec_ is not None
            merged_annotations = annotations
            if kv_get(merged_annotations, "provide-api-key") is None:
                merged_annotations = kv_set(merged_annotations, "provide-api-key", False)
            action = Action(
                path=path,
                exec=exec_,
                version=version or "0.0.1",
                publish=bool(publish),
                parameters=parameters or (),
                annotations=merged_annotations,
                limits=self._parse_limits(payload.get("limits"), Limits()),
            )
        else:
            action = replace(
                current,
                exec=exec_ or current.exec,
                version=version or bump_version(current.version),
                publish=current.publish if publish is None else publish,
                parameters=current.parameters if parameters is None else parameters,
                annotations=kv_merge(kv_without(current.annotations, del_annotations), annotations),
                limits=self._parse_limits(payload.get("limits"), current.limits),
            )
        if action.exec.is_sequence:
            # Sequences carry their components as the system parameter `_actions`.
            action = replace(action, parameters=(KeyValue("_actions", list(action.exec.components)),))
        elif fingerprint_refs(action.parameters):
            sources = self._catalog.sealed_sources(path.namespace, current.parameters if current else ())
            adopted = await self._vault.adopt(path.namespace, "actions", path.key, action.parameters, sources)
            action = replace(action, parameters=adopted)
        action = replace(
            action,
            annotations=kv_set(action.annotations, "exec", action.exec.kind),
            updated=self._now_ms(),
        )
        check_kv_size(action.parameters, "parameters", self._limits.max_parameters_bytes)
        check_kv_size(action.annotations, "annotations", self._limits.max_parameters_bytes)
        if action.annotation(INPUT_SCHEMA_ANNOTATION) is not None:
            check_schema(action.annotation(INPUT_SCHEMA_ANNOTATION))
        if action.annotation(OUTPUT_SCHEMA_ANNOTATION) is not None:
            check_output_schema(action.annotation(OUTPUT_SCHEMA_ANNOTATION))
        if action.annotation(TAGS_ANNOTATION) is not None:
            parse_tags(action.annotation(TAGS_ANNOTATION))
        if action.annotation(SECRETS_ANNOTATION) is not None:
            await self._secrets.check_refs(path.namespace, action.annotation(SECRETS_ANNOTATION))
            # Whoever writes code that receives secrets uses them: SECRETS, whoever wired them first.
            await self._secrets.authorize_wiring(identity, action)
        if action.annotation(POLICY_ANNOTATION) is not None:
            self._check_policy(action)
        # Sequences' `_actions` is a system parameter listing components, not a secret.
        exempt = frozenset({"_actions"}) if action.exec.is_sequence else frozenset()
        # The gate sees plaintext parameters (to find secrets passed in them) and runs before any write.
        gated = None
        if self._gate is not None and not action.exec.is_sequence:
            gated = await self._gate.check(identity, action, accept_risk)
        sealed = await self._vault.seal(path.namespace, "actions", path.key, action.parameters, exempt=exempt)
        written = await self._write(replace(action, parameters=sealed), existing)
        if gated is not None and self._gate is not None:
            await self._gate.record(written, gated)
        if written.annotation(SECRETS_ANNOTATION) is not None:
            self._secrets.wired(identity, written)
        return written

    def _check_policy(self, action: Action) -> None:
        """A ``policy`` annotation must parse, egress grants included (400 at deploy, not at run)."""
        policy = parse_policy(action.annotation(POLICY_ANNOTATION), action.path.namespace)
        try:
            parse_egress(policy.egress, self._egress_data)
        except EgressPolicyError as exc:
            raise BadRequestError(f"The annotation 'policy' has an invalid egress grant: {exc}") from None

    async def _write(self, action: Action, existing: StoredEntity | None) -> Action:
        store = self._catalog.store
        if not action.exec.is_sequence:
            await store.put_code(action.exec.code_digest, action.exec.code.encode())
        doc = action_to_doc(action)
        if self._catalog.integrity is not None:
            doc = await self._catalog.integrity.stamp(action.path.namespace, action.path.key, doc)
        await store.apply(
            [
                Put(
                    action.path.namespace,
                    action.path.key,
                    "actions",
                    doc,
                    action.updated,
                    expected_revision=existing.revision if existing is not None else None,
                )
            ]
        )
        self._catalog.forget(action.path.namespace, action.path.key)
        # Invariant: version history keeps no ciphertext (only fingerprints), so key rotation
        # has nothing to re-encrypt there and old data keys can be retired.
        history = {k: v for k, v in doc.items() if k != INTEGRITY_FIELD}
        history["parameters"] = kv_to_json(action.parameters)
        await store.put_action_version(action.path.namespace, action.path.key, action.version, history, action.updated)
        return action

    async def get(self, identity: Identity, path: EntityPath, *, include_code: bool = True) -> Action:
        """The action (through a binding: the target with merged parameters).

        Its code needs READ_CODE in the action's namespace (viewers and invokers see metadata only).
        """
        resolved = await self._catalog.resolve_action(identity, path)
        if include_code:
            owner_ns = resolved.action.path.namespace
            is_public = resolved.package is not None and resolved.package.publish and owner_ns != identity.namespace
            if not is_public:
                await self._catalog.access.require(identity, owner_ns, Permission.READ_CODE, path.relative)
        action = resolved.action
        if resolved.package is not None:
            params = resolved.package.parameters
            if resolved.binding is not None:
                params = kv_merge(params, resolved.binding.parameters)
            action = replace(action, parameters=kv_merge(params, action.parameters))
        return action

    async def lint_policies(self, identity: Identity, namespace: str) -> list[dict[str, JSON]]:
        """Findings about broad or useless grants in the policy of every action of ``namespace``."""
        await self._catalog.access.require(identity, namespace, Permission.READ, namespace)
        report: list[dict[str, JSON]] = []
        skip = 0
        while True:
            page = await self._catalog.store.list_entities(namespace, "actions", package=None, skip=skip, limit=200)
            for entity in page:
                action = action_from_doc(entity.namespace, entity.name, entity.updated, entity.doc, "")
                provide = action.annotation("provide-api-key")
                try:
                    findings = lint_policy(
                        parse_policy(action.annotation(POLICY_ANNOTATION), namespace),
                        namespace,
                        provides_api_key=provide is None or bool(provide),
                    )
                except PlatformError as exc:
                    findings = [f"invalid policy: {exc.message}"]
                if findings:
                    report.append({"action": action.path.fqn, "findings": list(findings)})
            if len(page) < 200:
                return report
            skip += 200

    async def list(
        self, identity: Identity, namespace: str, package: str | None, *, skip: int, limit: int
    ) -> list[dict[str, JSON]]:
        """Actions of a namespace (root listing includes packaged ones) or of one package."""
        target_ns, target_pkg = namespace, package
        if package is not None:
            pkg = await self._catalog.readable_package(identity, namespace, package)
            if pkg.binding is not None:
                bound = await self._catalog.readable_package(identity, pkg.binding.namespace, pkg.binding.name)
                target_ns, target_pkg = bound.path.namespace, bound.path.name
        else:
            await self._catalog.access.require(identity, namespace, Permission.READ, namespace)
        entities = await self._catalog.store.list_entities(
            target_ns, "actions", package=target_pkg, skip=skip, limit=limit
        )
        return [action_summary(e.namespace, e.name, e.updated, e.doc) for e in entities]

    async def count(self, identity: Identity, namespace: str, package: str | None) -> int:
        """How many actions ``list`` would return without paging."""
        if package is None:
            await self._catalog.access.require(identity, namespace, Permission.READ, namespace)
        else:
            await self._catalog.readable_package(identity, namespace, package)
        return await self._catalog.store.count_entities(namespace, "actions", package=package)

    async def delete(self, identity: Identity, path: EntityPath) -> Action:
        """Delete an action and return it."""
        await self._container(identity, path)
        entity = await self._catalog.require(path.namespace, path.key, "actions")
        # Not verified: deleting is how an owner gets rid of an action found tampered with.
        action = await self._catalog.action_from(entity, verify=False)
        await self._catalog.store.apply([Delete(path.namespace, path.key, entity.revision)])
        self._catalog.forget(path.namespace, path.key)
        return action
