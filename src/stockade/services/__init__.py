"""Use cases: one service per resource; no HTTP, no SQL. ``Services`` wires them together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import final

from stockade.config import Settings
from stockade.domain import Clock
from stockade.observability.metrics import Metrics
from stockade.observability.tracing import Tracer
from stockade.security import Keyring, load_keyring
from stockade.security.authz import load_role_matrix
from stockade.security.jwt_auth import JwtVerifier, load_issuers
from stockade.security.scanner import Advisory
from stockade.security.tokens import ActionTokens
from stockade.services.access import AccessService, SecurityEpoch
from stockade.services.actions import ActionService, bounds_from
from stockade.services.activations import ActivationRecorder, ActivationService
from stockade.services.advisory_sync import AdvisorySyncer
from stockade.services.apis import ApiService
from stockade.services.audit import AuditEvent, AuditLog
from stockade.services.auth import MISSING_AUTH_MESSAGE, Authenticator, Credentials, SignedParts
from stockade.services.catalog import Catalog, ResolvedAction
from stockade.services.console import ConsoleSessions, NewSession
from stockade.services.integrity import ActionIntegrity
from stockade.services.invoke import SEALED_MESSAGE, ActionRunner, InvokeRequest, InvokeResult, InvokeService
from stockade.services.limits import LimitOverrides
from stockade.services.lockout import LoginGuard
from stockade.services.monitoring import Monitoring, ReportsStatistics, build_monitoring, new_event_pipeline
from stockade.services.namespaces import Bootstrap, NamespaceService
from stockade.services.packages import PackageService
from stockade.services.posture import NamespacePosture, PostureService
from stockade.services.quotas import RetryLaterError
from stockade.services.rotation import KeyRotation, RotationReport
from stockade.services.rules import RuleService
from stockade.services.scans import DeployGate, GateAudit, ScanPolicy
from stockade.services.secrets import SecretBackend, SecretService, StoreSecretBackend
from stockade.services.system import SYSTEM_NAMESPACE, SystemCatalog
from stockade.services.throttle import Throttle
from stockade.services.transfer import TransferTokens
from stockade.services.triggers import TriggerService
from stockade.services.vault import ParameterVault
from stockade.store import Store

__all__ = [
    "MISSING_AUTH_MESSAGE",
    "SEALED_MESSAGE",
    "SYSTEM_NAMESPACE",
    "AccessService",
    "ActionIntegrity",
    "ActionRunner",
    "ActionService",
    "ActivationRecorder",
    "ActivationService",
    "AdvisorySyncer",
    "ApiService",
    "AuditEvent",
    "AuditLog",
    "Authenticator",
    "Bootstrap",
    "Catalog",
    "ConsoleSessions",
    "Credentials",
    "DeployGate",
    "InvokeRequest",
    "InvokeResult",
    "InvokeService",
    "KeyRotation",
    "LimitOverrides",
    "LoginGuard",
    "Monitoring",
    "NamespacePosture",
    "NamespaceService",
    "NewSession",
    "PackageService",
    "ParameterVault",
    "PostureService",
    "ResolvedAction",
    "RetryLaterError",
    "RotationReport",
    "RuleService",
    "ScanPolicy",
    "SecretBackend",
    "SecretService",
    "Services",
    "SignedParts",
    "SystemCatalog",
    "Throttle",
    "TransferTokens",
    "TriggerService",
    "bounds_from",
    "build_services",
]


@final
@dataclass(frozen=True, slots=True)
class Services:
    """Every use case, wired once."""

    settings: Settings
    store: Store
    clock: Clock
    auth: Authenticator
    catalog: Catalog
    actions: ActionService
    packages: PackageService
    triggers: TriggerService
    rules: RuleService
    invoke: InvokeService
    activations: ActivationService
    recorder: ActivationRecorder
    namespaces: NamespaceService
    throttle: Throttle
    vault: ParameterVault
    access: AccessService
    audit: AuditLog
    epoch: SecurityEpoch
    secrets: SecretService
    rotation: KeyRotation
    scans: DeployGate
    integrity: ActionIntegrity
    advisory_sync: AdvisorySyncer
    monitoring: Monitoring
    apis: ApiService
    limits: LimitOverrides
    console: ConsoleSessions
    posture: PostureService
    system: SystemCatalog
    transfer: TransferTokens


def build_services(
    settings: Settings,
    store: Store,
    runner: ActionRunner,
    clock: Clock,
    keyring: Keyring | None = None,
    *,
    enforce_access: bool = True,
    metrics: Metrics | None = None,
    tracer: Tracer | None = None,
) -> Services:
    """Wire the services over a store, an action runner, a clock and the master keyring."""
    limits = settings.limits

    def reload_keyring() -> Keyring:
        return load_keyring(settings.master_key_path, settings.security.master_key)

    metrics = metrics if metrics is not None else Metrics()
    events = new_event_pipeline(settings, store, metrics, clock)
    vault = ParameterVault(store, keyring or reload_keyring(), clock, reload_keyring=reload_keyring, events=events)
    monitoring = build_monitoring(
        settings,
        store,
        vault,
        clock,
        metrics,
        events,
        pool_statistics=runner.pool_statistics if isinstance(runner, ReportsStatistics) else None,
    )
    audit = AuditLog(store, vault, clock)
    epoch = SecurityEpoch(store)
    namespaces = NamespaceService(store, clock, vault, audit=audit, on_key_issued=epoch.changed)
    access = AccessService(store, load_role_matrix(), epoch, audit, clock, namespaces.issue_key, enforce=enforce_access)
    tokens = ActionTokens(vault.keyring.keys)
    jwt = JwtVerifier(load_issuers(Path(settings.auth.jwt_issuers_file)) if settings.auth.jwt_issuers_file else [])
    auth = Authenticator(
        store,
        clock,
        vault=vault,
        tokens=tokens,
        jwt=jwt,
        audit=audit,
        events=events,
        shared_nonces=bool(settings.nats.url),
        guard=LoginGuard(
            store,
            clock,
            window_s=settings.auth.failure_window_s,
            slow_after=settings.auth.slow_after_failures,
            pair_lock_after=settings.auth.lockout_after_failures,
            source_lock_after=settings.auth.source_lockout_after_failures,
            lock_s=settings.auth.lockout_s,
        ),
    )
    epoch.subscribe(auth.forget_all)
    monitoring.alerts.access = access
    integrity = ActionIntegrity(store, vault, clock, events)
    catalog = Catalog(store, clock, access, integrity=integrity)
    recorder = ActivationRecorder(
        store,
        batch_size=settings.store.activation_batch_size,
        flush_interval_ms=settings.store.activation_flush_interval_ms,
        now_ms=clock.now_ms,
    )
    limit_overrides = LimitOverrides(store, clock, epoch)
    throttle = Throttle(
        now_ms=clock.now_ms,
        invocations_per_minute=limits.invocations_per_minute,
        concurrent_invocations=limits.concurrent_invocations,
        fires_per_minute=limits.fires_per_minute,
        overrides=limit_overrides.get,
        # Scale-out: every controller takes per-minute acceptances in the store (limits hold in total).
        shared=store if settings.nats.url else None,
    )
    recorder.rates = throttle  # accepted counts ride in the journal's group commits
    secrets = SecretService(store, StoreSecretBackend(store, vault, clock), clock, access, audit=audit)
    invoke = InvokeService(
        catalog,
        runner,
        recorder,
        throttle,
        clock,
        vault,
        secrets,
        tokens=tokens,
        max_sequence_length=limits.max_sequence_length,
        monitor=monitoring.activations,
        tracer=tracer,
        owner=settings.nats.process_id if settings.nats.url else "",
    )
    gate = DeployGate(
        store,
        clock,
        settings.scan,
        admin_namespace=settings.default_namespace,
        events=monitoring.gate,
        access=access,
        audit=GateAudit(audit),
        audit_log=audit,
    )
    actions = ActionService(catalog, limits, clock.now_ms, vault, secrets, gate)

    async def rescan_changed(advisories: Sequence[Advisory]) -> int:
        gate.forget_coverage()
        return len(await gate.rescan(advisories))

    advisory_sync = AdvisorySyncer(store, clock, settings.scan, rescan_changed)
    packages = PackageService(catalog, limits, clock.now_ms, vault)
    return Services(
        settings=settings,
        advisory_sync=advisory_sync,
        store=store,
        clock=clock,
        auth=auth,
        catalog=catalog,
        actions=actions,
        packages=packages,
        triggers=TriggerService(catalog, invoke, recorder, throttle, limits, clock, vault),
        rules=RuleService(catalog, clock.now_ms),
        invoke=invoke,
        activations=ActivationService(store, recorder),
        recorder=recorder,
        namespaces=namespaces,
        access=access,
        audit=audit,
        epoch=epoch,
        throttle=throttle,
        vault=vault,
        secrets=secrets,
        rotation=KeyRotation(store, vault, clock, integrity=integrity),
        integrity=integrity,
        scans=gate,
        monitoring=monitoring,
        apis=ApiService(store, access, clock, base_url=settings.api.base_url, max_body_bytes=limits.max_payload_bytes),
        limits=limit_overrides,
        console=ConsoleSessions(store, auth, audit, clock, ttl_s=settings.console.session_ttl_s),
        posture=PostureService(access, actions, gate, monitoring.alerts, monitoring.events, clock.now_ms),
        transfer=TransferTokens(access, vault),
        system=SystemCatalog(store, catalog, packages, actions, clock, audit),
    )
